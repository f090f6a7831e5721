# bash completion for tlssniffctl (installed by meson into bash-completion's folder).
_tlssniffctl() {
        local cur prev cmd w
        cur=${COMP_WORDS[COMP_CWORD]}
        prev=${COMP_WORDS[COMP_CWORD-1]}
        for w in "${COMP_WORDS[@]:1:COMP_CWORD-1}"; do
                case $w in
                        status|stats|connections|processes|tail|follow|attach|detach|reload) cmd=$w ;;
                esac
        done
        case $prev in
                -s|--socket)
                        COMPREPLY=($(compgen -f -- "$cur"))
                        return
                        ;;
                --cgroup)
                        COMPREPLY=($(compgen -d -- "$cur"))
                        return
                        ;;
                --unit)
                        COMPREPLY=($(compgen -W "$(systemctl list-units --type=service,scope,slice \
                                --state=running --no-legend --plain 2>/dev/null | \
                                awk '{print $1}')" -- "$cur"))
                        return
                        ;;
                --status)
                        COMPREPLY=($(compgen -W "1xx 2xx 3xx 4xx 5xx" -- "$cur"))
                        return
                        ;;
                --pid|--comm|--host|--path|-n|--count)
                        return
                        ;;
        esac
        if [[ $cur == -* ]]; then
                case $cmd in
                        tail)
                                COMPREPLY=($(compgen -W "--socket --json --help --data --exchanges
                                        --connections --pid --comm --unit --cgroup --host --path
                                        --status --count" -- "$cur"))
                                ;;
                        follow)
                                COMPREPLY=($(compgen -W "--socket --json --help --count" -- "$cur"))
                                ;;
                        *)
                                COMPREPLY=($(compgen -W "--socket --json --help" -- "$cur"))
                                ;;
                esac
        elif [[ -z $cmd ]]; then
                COMPREPLY=($(compgen -W "status stats connections processes tail follow attach
                        detach reload" -- "$cur"))
        elif [[ ($cmd == attach || $cmd == detach) && $prev == "$cmd" ]]; then
                # a running unit, or a pid
                COMPREPLY=($(compgen -W "$(systemctl list-units --type=service,scope \
                        --state=running --no-legend --plain 2>/dev/null | awk '{print $1}')" \
                        -- "$cur"))
        fi
}
complete -F _tlssniffctl tlssniffctl
