// expect: 5:5: error: #error define NUM_PORTS, e.g. -D NUM_PORTS=8
#include <v1model.p4>

#if !defined(NUM_PORTS) || NUM_PORTS < 2
    #error define NUM_PORTS, e.g. -D NUM_PORTS=8
#endif
