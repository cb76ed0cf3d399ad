"""fabriclab.compiler: P4_16 (v1model) text -> checked program -> Python and C back-ends, P4Info."""
