"""fabriclab.v1model: the v1model architecture at run time — pipeline, tables, externs, PRE, STF."""
