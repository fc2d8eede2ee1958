"""Pure judgement of run directories: SLO checks, A/B statistics, memory, verdict and its writers.

Everything here works on plain data loaded from run directories; nothing
starts a process or opens a socket. `rolescope gate` and `rolescope tune`
call into it.
"""
