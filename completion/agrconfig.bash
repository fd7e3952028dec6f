# bash completion for agrconfig(8)
_agrconfig() {
    local cur prev words cword
    _init_completion 2>/dev/null || {
        cur=${COMP_WORDS[COMP_CWORD]}; prev=${COMP_WORDS[COMP_CWORD-1]}
        words=("${COMP_WORDS[@]}"); cword=$COMP_CWORD
    }
    local agr_words="create destroy agrport -agrport link0 -link0 link1 -link1 agrproto link2 -link2 lacptimeout lacpstrict -lacpstrict agrhash datapath lacpmode lacpsysprio lacpsysid -lacpsysid agrportpri agrmaxports agrminports lacpfallback -lacpfallback agrwtr agrlinkcheck -agrlinkcheck debug -debug monitor whichport diagnose agrselect agrannounce agrdowndelay agrmacpolicy lladdr -lladdr link"
    local if_words="up down mtu inet inet6"
    case "$prev" in
        agrport)
            COMPREPLY=($(compgen -W "$(agrconfig -l --free 2>/dev/null)" -- "$cur")); return ;;
        -agrport|agrportpri)
            local ports
            ports=$(agrconfig "${words[1]}" 2>/dev/null | sed -n 's/^\tagrport: \([^,]*\),.*/\1/p')
            COMPREPLY=($(compgen -W "$ports" -- "$cur")); return ;;
        lacptimeout) COMPREPLY=($(compgen -W "fast slow" -- "$cur")); return ;;
        lacpmode) COMPREPLY=($(compgen -W "active passive" -- "$cur")); return ;;
        agrproto) COMPREPLY=($(compgen -W "lacp loadbalance failover slb" -- "$cur")); return ;;
        datapath) COMPREPLY=($(compgen -W "auto relay ebpf" -- "$cur")); return ;;
        agrselect) COMPREPLY=($(compgen -W "stable bandwidth count" -- "$cur")); return ;;
        agrmacpolicy) COMPREPLY=($(compgen -W "same active follow" -- "$cur")); return ;;
        agrhash) COMPREPLY=($(compgen -W "l2 l2,l3 l2,l3,l4 l3 l3,l4 l4" -- "$cur")); return ;;
        until) COMPREPLY=($(compgen -W "distributing collecting" -- "$cur")); return ;;
        whichport|from) return ;;
        -f|--confdir=*) COMPREPLY=($(compgen -f -- "$cur")); return ;;
        mtu|interval|timeout|inet|inet6|netmask|prefixlen|lacpsysprio|lacpsysid|agrmaxports|agrminports|agrwtr|agrlinkcheck|agrannounce|agrdowndelay|lladdr|link) return ;;
    esac
    # agrportpri PORT N: the number is the user's
    [ "$cword" -ge 3 ] && [ "${words[cword-2]}" = agrportpri ] && return
    # link MAC active (NetBSD's)
    if [ "$cword" -ge 3 ] && [ "${words[cword-2]}" = link ]; then
        COMPREPLY=($(compgen -W "active" -- "$cur")); return
    fi
    if [ "$cword" -eq 1 ]; then
        COMPREPLY=($(compgen -W "$(agrconfig -l 2>/dev/null) -a -l -C -n -f --boot --halt -v --json --metrics --metrics-file= --destroy-all --help --version" -- "$cur"))
        return
    fi
    if [ "${words[1]}" = -l ]; then    # -l [--free [-v] [--json] [listen N]]
        case "$prev" in
            -l) COMPREPLY=($(compgen -W "--free" -- "$cur")) ;;
            listen) ;;
            *) COMPREPLY=($(compgen -W "-v --json listen" -- "$cur")) ;;
        esac
        return
    fi
    local name=${words[1]}
    case "$name" in
        -*) name=${words[2]} ;;
    esac
    case "$name" in
        agr[0-9]*) COMPREPLY=($(compgen -W "$agr_words $if_words" -- "$cur")) ;;
        *) COMPREPLY=($(compgen -W "$if_words" -- "$cur")) ;;
    esac
}
complete -F _agrconfig agrconfig
