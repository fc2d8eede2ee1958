"""`rolescope capacity`: the highest open-model arrival rate at which every SLO of the spec holds."""
