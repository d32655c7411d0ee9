// `mcpki completion bash|zsh|fish`: shell completion scripts generated from the commander tree (commands,
// subcommands, options), so they always match the command line they came with.
import { McpkiError } from '../../index.js';
import type { Command } from 'commander';
import { action } from '../command.js';
import { writeStdout } from '../stdout.js';

const SHELLS = ['bash', 'zsh', 'fish'] as const;
type Shell = (typeof SHELLS)[number];

interface OptionInfo {
  flags: string[];
  takesValue: boolean;
  description: string;
}

interface NodeInfo {
  /** "" for mcpki itself, "issue server" for a subcommand */
  path: string;
  subcommands: { name: string; description: string }[];
  options: OptionInfo[];
}

/** Every command of the tree, depth first, with its subcommands and options (hidden ones left out). */
export function commandTree(program: Command): NodeInfo[] {
  const nodes: NodeInfo[] = [];
  const walk = (command: Command, path: string): void => {
    const subcommands = command.commands.filter((c) => !(c as unknown as { _hidden?: boolean })._hidden);
    nodes.push({
      path,
      subcommands: subcommands.map((c) => ({ name: c.name(), description: c.description() })),
      options: [
        ...command.options
          .filter((o) => !o.hidden)
          .map((o) => ({
            flags: [o.long, o.short].filter((f): f is string => !!f),
            takesValue: o.required || o.optional,
            description: o.description,
          })),
        { flags: ['--help', '-h'], takesValue: false, description: 'show help' },
      ],
    });
    for (const sub of subcommands) walk(sub, path ? `${path} ${sub.name()}` : sub.name());
  };
  walk(program, '');
  return nodes;
}

/** A word as a shell reads it inside single quotes (command and option names are plain words anyway). */
function plain(word: string): string {
  if (!/^[A-Za-z0-9 ._:-]*$/.test(word))
    throw new McpkiError(
      'INTERNAL',
      `the command name or option "${word}" cannot go into a completion script`,
      'report this as a bug',
    );
  return word;
}

/** A description inside fish single quotes: one line, at most 80 characters, quotes and backslashes escaped. */
function fishText(text: string): string {
  const line = text.replace(/[\u0000-\u001f\u007f]+/g, ' ').trim();
  const short = line.length > 80 ? `${line.slice(0, 79)}…` : line;
  return short.replace(/\\/g, '\\\\').replace(/'/g, "\\'");
}

function bashScript(nodes: NodeInfo[]): string {
  const cases = (pick: (node: NodeInfo) => string[]): string =>
    nodes
      .map((node) => [node.path, pick(node)] as const)
      .filter(([, words]) => words.length > 0)
      .map(([path, words]) => `    '${plain(path)}') echo '${words.map(plain).join(' ')}' ;;`)
      .join('\n');
  return `# bash completion for mcpki, generated from its commands by "mcpki completion bash".
# Load it now with: source <(mcpki completion bash)
# or for every shell: mcpki completion bash > ~/.local/share/bash-completion/completions/mcpki
_mcpki_subcommands() {
  case $1 in
${cases((node) => node.subcommands.map((s) => s.name))}
  esac
}
_mcpki_options() {
  case $1 in
${cases((node) => node.options.flatMap((o) => o.flags))}
  esac
}
_mcpki_value_options() {
  case $1 in
${cases((node) => node.options.filter((o) => o.takesValue).flatMap((o) => o.flags))}
  esac
}
_mcpki() {
  # names that are not special in zsh either (path, words), which runs this through bashcompinit
  local cur=\${COMP_WORDS[COMP_CWORD]} cmdpath='' word next i cands
  COMPREPLY=()
  for ((i = 1; i < COMP_CWORD; i++)); do
    word=\${COMP_WORDS[i]}
    if [[ $word == -* ]]; then
      # an option that takes a value: the next word is that value
      if [[ " $(_mcpki_value_options "$cmdpath") $(_mcpki_value_options '') " == *" $word "* ]]; then
        if ((i + 1 == COMP_CWORD)); then
          COMPREPLY=($(compgen -f -- "$cur"))
          return 0
        fi
        ((i++))
      fi
      continue
    fi
    for next in $(_mcpki_subcommands "$cmdpath"); do
      if [[ $next == "$word" ]]; then
        cmdpath=\${cmdpath:+$cmdpath }$word
        break
      fi
    done
  done
  if [[ $cur == -* ]]; then
    COMPREPLY=($(compgen -W "$(_mcpki_options "$cmdpath") $([[ -n $cmdpath ]] && _mcpki_options '')" -- "$cur"))
    return 0
  fi
  cands=$(_mcpki_subcommands "$cmdpath")
  if [[ -n $cands ]]; then
    COMPREPLY=($(compgen -W "$cands" -- "$cur"))
  else
    COMPREPLY=($(compgen -f -- "$cur"))
  fi
  return 0
}
complete -o filenames -F _mcpki mcpki
`;
}

function zshScript(nodes: NodeInfo[]): string {
  // zsh runs the bash function through its bash compatibility layer
  return `# zsh completion for mcpki, generated from its commands by "mcpki completion zsh".
# Load it in ~/.zshrc with: source <(mcpki completion zsh)
(( $+functions[compdef] )) || { autoload -U +X compinit && compinit }
autoload -U +X bashcompinit && bashcompinit
${bashScript(nodes)
  .split('\n')
  .filter((line) => !line.startsWith('#'))
  .join('\n')}`;
}

function fishScript(nodes: NodeInfo[]): string {
  const cases = (pick: (node: NodeInfo) => string[]): string =>
    nodes
      .map((node) => [node.path, pick(node)] as const)
      .filter(([, lines]) => lines.length > 0)
      .map(([path, lines]) => `        case '${plain(path)}'\n${lines.map((line) => `            ${line}`).join('\n')}`)
      .join('\n');
  return `# fish completion for mcpki, generated from its commands by "mcpki completion fish".
# Load it now with: mcpki completion fish | source
# or for every shell: mcpki completion fish > ~/.config/fish/completions/mcpki.fish
function __mcpki_subcommands
    switch $argv[1]
${cases((node) => node.subcommands.map((s) => `printf '%s\\t%s\\n' '${plain(s.name)}' '${fishText(s.description)}'`))}
    end
end
function __mcpki_options
    switch $argv[1]
${cases((node) => node.options.flatMap((o) => o.flags.map((flag) => `printf '%s\\t%s\\n' '${plain(flag)}' '${fishText(o.description)}'`)))}
    end
end
function __mcpki_value_options
    switch $argv[1]
${cases((node) => node.options.filter((o) => o.takesValue).flatMap((o) => o.flags.map((flag) => `echo '${plain(flag)}'`)))}
    end
end
function __mcpki_complete
    set -l words (commandline -opc)
    set -l cur (commandline -ct)
    set -e words[1]
    set -l path ''
    set -l skip 0
    for word in $words
        if test $skip = 1
            set skip 0
            continue
        end
        if string match -q -- '-*' $word
            if contains -- $word (__mcpki_value_options "$path") (__mcpki_value_options '')
                set skip 1
            end
            continue
        end
        if contains -- $word (__mcpki_subcommands "$path" | string replace -r '\\t.*' '')
            set path (string trim -- "$path $word")
        end
    end
    if test $skip = 1
        __fish_complete_path $cur
        return
    end
    if string match -q -- '-*' $cur
        __mcpki_options "$path"
        test -n "$path"; and __mcpki_options ''
        return
    end
    set -l subs (__mcpki_subcommands "$path")
    if test (count $subs) -gt 0
        printf '%s\\n' $subs
    else
        __fish_complete_path $cur
    end
end
complete -c mcpki -f -a '(__mcpki_complete)'
`;
}

export function completionScript(shell: string, program: Command): string {
  if (!(SHELLS as readonly string[]).includes(shell)) {
    throw new McpkiError('USAGE', `unknown shell "${shell}"`, `use one of: ${SHELLS.join(', ')}`);
  }
  const nodes = commandTree(program);
  return { bash: bashScript, zsh: zshScript, fish: fishScript }[shell as Shell](nodes);
}

/** `full` builds every command of mcpki (this process registered only the completion command). */
export function registerCompletion(program: Command, full: () => Promise<Command>): void {
  program
    .command('completion')
    .argument('<shell>', `the shell: ${SHELLS.join(', ')}`)
    .description('print a shell completion script for mcpki (bash, zsh or fish)')
    .addHelpText(
      'after',
      `
Examples:
  source <(mcpki completion bash)                       this shell
  mcpki completion bash > ~/.local/share/bash-completion/completions/mcpki
  source <(mcpki completion zsh)                        in ~/.zshrc
  mcpki completion fish > ~/.config/fish/completions/mcpki.fish`,
    )
    .action(
      action(async (_env, shell: string) => {
        if (!(SHELLS as readonly string[]).includes(shell))
          throw new McpkiError('USAGE', `unknown shell "${shell}"`, `use one of: ${SHELLS.join(', ')}`);
        writeStdout(completionScript(shell, await full()));
      }),
    );
}
