// mcpki's public API, for deployment scripts, tests and the command line (src/cli/ imports nothing else).
// Nothing here prints or exits: every function returns a result or throws an McpkiError (code, message, hint,
// exitCode). package.json declares the modules free of import side effects, so a bundler keeps only what a
// caller uses: the CLI's bundles import from here and still load only the modules their command needs.
export { createContext, type Context, type ContextOptions, type Clock } from './context.js';
export {
  McpkiError,
  EXIT_CODES,
  exitCodeFor,
  exitCodeTable,
  fix,
  renderFix,
  isMcpkiError,
  type ErrorCode,
  type ExitCodeRow,
  type Fix,
  type FixSetting,
  type Hint,
  type Surface,
} from './errors.js';
export { installError } from './install.js';
export { VERSION } from './version.js';
export { resolveHome, layoutOf, type HomeLayout } from './home.js';
export {
  showCa,
  rotateIntermediate,
  loadIssuingCa,
  type CaInfo,
  type InitCaOptions,
  type AuthorityInfo,
} from './pki/ca.js';
import { initCa as initCaWith, type InitCaOptions as InitOptions, type InitCaResult } from './pki/ca.js';
import { removeRootFromTrustStores } from './trust/index.js';
import type { Context as CoreContext } from './context.js';

/** `mcpki init`: with `force`, the replaced root leaves every trust store mcpki put it in before the new CA is written. */
export function initCa(context: CoreContext, options: InitOptions = {}): InitCaResult {
  return initCaWith(context, { untrustOldRoot: removeRootFromTrustStores, ...options });
}
export {
  issueCertificate,
  issueBatch,
  DEFAULT_DAYS,
  MAX_DAYS,
  DEFAULT_P12_PASSWORD,
  type IssueRequest,
  type IssuedCertificate,
} from './pki/issue.js';
export { parseBatch } from './pki/batch.js';
export { signCsr, type SignRequest, type SignedCertificate } from './pki/sign.js';
export { forgetCertificate, type ForgetResult, type ForgottenCertificate } from './pki/forget.js';
export { revokeCertificate, parseRevocationReason } from './pki/revoke.js';
export { generateCrl, type CrlOptions, type CrlResult } from './pki/crl.js';
export { encodePkcs12, type Pkcs12Options } from './pki/pkcs12.js';
export { classifySan, classifySans, type San, type SanType } from './pki/names.js';
export { DEFAULT_PERMITTED, parsePermitted, broadPermits, type Permitted } from './pki/constraints.js';
export {
  KEY_TYPES,
  DEFAULT_KEY_TYPE,
  KEY_TYPE_DESCRIPTION,
  generateKey,
  parseKeyType,
  type KeyType,
} from './pki/keys.js';
export {
  listCertificates,
  findCertificate,
  listEvents,
  viewOf,
  type CertificateView,
  type CertificateState,
  type ListOptions,
} from './inventory.js';
export { writeFilesAtomic, writeFileAtomic, removeStaleTemps, type FileToWrite } from './fs/atomic.js';
export { parseDuration, DURATION_LIMITS } from './duration.js';
export { readInputText, INPUT_LIMITS, type ReadInputOptions } from './fs/read.js';
export { assertSafeDir } from './fs/safe-path.js';
export { backupInventory, restoreInventory, type BackupResult, type RestoreResult } from './store/backup.js';
export { migrateInventory, type StoreMigrateResult, type TableCopy } from './store/copy.js';
export { parseStoreLocation, redactUrl, type StoreLocation, type PostgresLocation } from './store/location.js';
export type {
  CertificateRecord,
  CertificateSummary,
  CertificatePaths,
  CertificateKind,
  EventRecord,
  AuthorityRecord,
} from './store/store.js';
export {
  installTrust,
  uninstallTrust,
  trustStatus,
  buildEnv,
  formatEnv,
  TRUST_STORE_NAMES,
  SHELL_KINDS,
  type TrustStoreName,
  type TrustOptions,
  type TrustStoreResult,
  type TrustReport,
  type ShellKind,
  type EnvReport,
} from './trust/index.js';
export {
  registerAccount,
  listAccounts,
  showAccount,
  deactivateAccount,
  updateAccountEmail,
  rolloverAccountKey,
  parseAccountKeyType,
  ACCOUNT_KEY_TYPES,
  type RegisterOptions,
  type AccountView,
  type RolloverOptions,
  type RolloverResult,
  type AccountKeyType,
} from './acme/accounts.js';
export {
  issueAcmeCertificate,
  type AcmeIssueRequest,
  type AcmeIssued,
  type ProgressStep,
  type ProgressListener,
} from './acme/issue.js';
export { revokeAcmeCertificate } from './acme/revoke.js';
export { refreshRenewalInfo, type RenewalInfoOutcome } from './acme/renewal-info.js';
export { ariCertificateId, chooseRenewalTime, fetchRenewalInfo } from './acme/ari.js';
export {
  createChallengeProvider,
  splitCommand,
  dnsTxtValue,
  type ChallengeOptions,
  type ChallengeProvider,
  type ChallengeTask,
} from './acme/challenges/index.js';
export { DIRECTORIES, resolveDirectory } from './acme/directories.js';
export {
  loadConfig,
  parseConfig,
  validateConfig,
  ConfigError,
  isConfigError,
  type Config,
  type DeclaredCertificate,
} from './config/index.js';
export {
  needsRenewal,
  parseRenewBefore,
  backoffDelay,
  type RenewalDecision,
  type RenewalPolicyInput,
  type RenewBefore,
} from './renewal/policy.js';
export { deployTargets, deployWithHooks, repairCheck, DeployError, type DeployOutcome } from './deploy/deploy.js';
export { renderTarget } from './deploy/targets.js';
export { TARGET_TYPES, type Target, type Material } from './deploy/types.js';
export { runHook, type HookResult } from './deploy/hooks.js';
export { verifyServedSerial } from './deploy/verify.js';
export {
  renewIssued,
  type RenewIssuedOptions,
  type RenewIssuedResult,
  type RenewIssuedItem,
} from './renewal/issued.js';
export {
  applyConfig,
  planRenewals,
  planCrl,
  type ApplyResult,
  type ApplyItem,
  type PlanItem,
  type CrlOutcome,
  type CrlPlan,
} from './renewal/runner.js';
export { createTlsReloader } from './tls/resolve.js';
export type {
  TlsReloader,
  TlsReloaderOptions,
  TlsReloaderCommon,
  TlsCertificateInfo,
  TlsPaths,
  CertificateByName,
} from './tls/reloader.js';
export { listTemplates, renderTemplate, type TemplateInfo, type RenderOptions } from './templates/render.js';
export { startService, type ServiceOptions, type RunningService, type ServiceLogger } from './service/serve.js';
export {
  checkTarget,
  DEFAULT_CHECK_TIMEOUT_MS,
  type CheckOptions,
  type CheckReport,
  type Finding,
  type Severity,
  type CheckStatus,
} from './check/index.js';
export {
  runAcmeServer,
  resolveAcmeServerSettings,
  parseProfile,
  DEFAULT_ACME_LISTEN,
  type AcmeServerSettings,
  type ResolvedAcmeServerSettings,
} from './acme-server/start.js';
export { createEabKey, listEabKeys, revokeEabKey, type CreatedEabKey, type EabKeyView } from './acme-server/eab.js';
export { renewEarly, type RenewEarlyResult } from './acme-server/ari.js';
