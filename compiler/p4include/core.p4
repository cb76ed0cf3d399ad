/* fabriclab's P4_16 core library: the declarations every P4_16 program sees.
 *
 * Written from the P4_16 language specification v1.2.x (sections "P4 core library",
 * "Packet extraction and emission", "Errors", "Match kinds"). It declares what the spec's
 * core.p4 declares, so programs written for p4c compile unchanged.
 */
/* The guard is p4c's name: programs test it with #ifdef _CORE_P4_. */
#ifndef _CORE_P4_
#define _CORE_P4_

/* Standard error codes; programs may add their own with further error declarations. */
error {
    NoError,                 /* no error */
    PacketTooShort,          /* not enough bits in the packet for extract() */
    NoMatch,                 /* select expression has no match */
    StackOutOfBounds,        /* reference to an invalid element of a header stack */
    HeaderTooShort,          /* extract() of a varbit field: too many bits */
    ParserTimeout,           /* parser execution time limit exceeded */
    ParserInvalidArgument    /* parser operation called with an unsupported value */
}

/* The packet being parsed. */
extern packet_in {
    /* Read a fixed-size header from the packet and mark it valid; advance the cursor. */
    void extract<T>(out T hdr);
    /* Read a header whose varbit field is variableFieldSizeInBits long. */
    void extract<T>(out T variableSizeHeader, in bit<32> variableFieldSizeInBits);
    /* Read bits ahead of the cursor without advancing it. */
    T lookahead<T>();
    /* Skip sizeInBits bits. */
    void advance(in bit<32> sizeInBits);
    /* Packet length in bytes (may be unknown on some targets). */
    bit<32> length();
}

/* The packet being built by a deparser. */
extern packet_out {
    /* Append hdr if it is valid (structs, stacks and unions emit their valid headers in order). */
    void emit<T>(in T hdr);
}

/* Reject the packet (transition to reject with toSignal) if check is false. */
extern void verify(in bool check, in error toSignal);

/* The action that does nothing; the default default_action. */
@noWarn("unused")
action NoAction() {}

/* The match kinds every target supports. */
match_kind {
    exact,
    ternary,
    lpm
}

#endif /* _CORE_P4_ */
