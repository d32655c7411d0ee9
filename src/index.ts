// mcpki's public API, for deployment scripts and tests. Nothing here prints or exits: every function
// returns a result or throws an McpkiError (code, message, hint, exitCode).
export { createContext, type Context, type ContextOptions, type Clock } from './context.js';
export { McpkiError, EXIT_CODES, exitCodeFor, isMcpkiError, type ErrorCode } from './errors.js';
export { resolveHome, layoutOf, type HomeLayout } from './home.js';
export { initCa, showCa, rotateIntermediate, loadIssuingCa, type CaInfo, type InitCaOptions, type AuthorityInfo } from './pki/ca.js';
export { issueCertificate, issueBatch, DEFAULT_DAYS, MAX_DAYS, DEFAULT_P12_PASSWORD, type IssueRequest, type IssuedCertificate } from './pki/issue.js';
export { parseBatch } from './pki/batch.js';
export { revokeCertificate, parseRevocationReason } from './pki/revoke.js';
export { generateCrl, type CrlOptions, type CrlResult } from './pki/crl.js';
export { encodePkcs12, type Pkcs12Options } from './pki/pkcs12.js';
export { classifySan, classifySans, type San, type SanType } from './pki/names.js';
export { DEFAULT_PERMITTED, parsePermitted, type Permitted } from './pki/constraints.js';
export { KEY_TYPES, generateKey, parseKeyType, type KeyType } from './pki/keys.js';
export { listCertificates, findCertificate, listEvents, viewOf, type CertificateView, type CertificateState, type ListOptions } from './inventory.js';
export { writeFilesAtomic, writeFileAtomic, removeStaleTemps, type FileToWrite } from './deploy/atomic.js';
export { parseDuration } from './duration.js';
export type { CertificateRecord, CertificatePaths, CertificateKind, EventRecord, AuthorityRecord } from './store/store.js';
export { installTrust, uninstallTrust, trustStatus, buildEnv, formatEnv, TRUST_STORE_NAMES, SHELL_KINDS, type TrustStoreName, type TrustOptions, type TrustStoreResult, type TrustReport, type ShellKind, type EnvReport } from './trust/index.js';
export { registerAccount, listAccounts, showAccount, deactivateAccount, type RegisterOptions, type AccountView } from './acme/accounts.js';
export { issueAcmeCertificate, type AcmeIssueRequest, type AcmeIssued, type ProgressStep, type ProgressListener } from './acme/issue.js';
export { revokeAcmeCertificate } from './acme/revoke.js';
export { refreshRenewalInfo, type RenewalInfoOutcome } from './acme/renewal-info.js';
export { ariCertificateId, chooseRenewalTime, fetchRenewalInfo } from './acme/ari.js';
export { createChallengeProvider, splitCommand, dnsTxtValue, type ChallengeOptions, type ChallengeProvider, type ChallengeTask } from './acme/challenges/index.js';
export { DIRECTORIES, resolveDirectory } from './acme/directories.js';
