# zsh -f zsh_complete.zsh FPATH_DIR OUT_FILE LINE...
# Types each LINE into an interactive zsh (in a pseudo-terminal) with FPATH_DIR first on
# fpath, completes at its end, and writes what the completion offers to OUT_FILE: the
# candidates of each LINE, then a line "END". Sourced by completions.sh through zsh.
zmodload zsh/zpty
local dir=$1 out=$2 line i
shift 2
: >$out
zpty z zsh -f -i
zpty -w z "PS1='> '; fpath=(${(q)dir} \$fpath); autoload -Uz compinit; compinit -u -D"
zpty -w z "_cap() { compadd() { local -a r; builtin compadd -O r \"\$@\"; print -rl -- \${^r} >>${(q)out}; builtin compadd \"\$@\" }; _main_complete; unfunction compadd; print END >>${(q)out} }"
zpty -w z 'unsetopt autolist listambiguous; bindkey -e; zle -C capwidget complete-word _cap; bindkey "^T" capwidget; bindkey "^U" kill-buffer'
for line in "$@"; do
  sleep 0.3
  zpty -w -n z "$line"$'\C-t'
  for ((i = 0; i < 300; i++)); do
    (( $(grep -c '^END$' $out) == ${@[(i)$line]} )) && break
    sleep 0.1
  done
  zpty -w -n z $'\C-u'
done
zpty -d z
