# bash completion for tlssniffctl (installed by meson into bash-completion's folder).
_tlssniffctl() {
        local cur prev
        cur=${COMP_WORDS[COMP_CWORD]}
        prev=${COMP_WORDS[COMP_CWORD-1]}
        case $prev in
                -s|--socket)
                        COMPREPLY=($(compgen -f -- "$cur"))
                        return
                        ;;
        esac
        if [[ $cur == -* ]]; then
                COMPREPLY=($(compgen -W "--socket --json --help" -- "$cur"))
        else
                COMPREPLY=($(compgen -W "status stats connections processes" -- "$cur"))
        fi
}
complete -F _tlssniffctl tlssniffctl
