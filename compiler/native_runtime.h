/* fabriclab native engine: support code included by every generated extension module.
 *
 * The generated module (compiler/native_codegen.py) defines the program's header/metadata
 * structs, the Ctx object type and the six v1model blocks as C functions; this header gives
 * them bit access, arithmetic helpers that mirror the Python engine (compiler/codegen.py),
 * checksums and hashes bit-identical to v1model/hashing.py, the per-table lookup memo and
 * the calls back into the Python runtime state (registers, counters, meters, random...).
 */
#ifndef FABRICLAB_NATIVE_RUNTIME_H
#define FABRICLAB_NATIVE_RUNTIME_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>

/* ------------------------------------------------------------------ packet context head */

typedef struct FlEngine FlEngine;

/* The v1model side of a packet (pipeline.PacketContext's class attributes); -1 = None. */
typedef struct {
    FlEngine *eng;                 /* strong reference */
    PyObject *frame;               /* bytes the payload is a suffix of (strong reference) */
    Py_ssize_t payload_off;
    int64_t clone_session, clone_field_list, resubmit_field_list, recirculate_field_list;
    int64_t truncate_to, reentries, now_us, length;
    uint64_t meter_color;
    jmp_buf *abort_jb;             /* a Python exception is set: unwind to the entry point */
    jmp_buf *exit_jb;              /* P4 ``exit``: unwind to the top-level control's entry */
} FlHead;

#define FL_NONE (-1)

static void fl_abort(FlHead *h) { longjmp(*h->abort_jb, 1); }

/* ------------------------------------------------------------------ bits and arithmetic */

static inline uint64_t fl_mask(unsigned w) { return w >= 64 ? ~UINT64_C(0) : ((UINT64_C(1) << w) - 1); }

static inline int64_t fl_sext(uint64_t v, unsigned w)
{
    if (w >= 64) return (int64_t)v;
    unsigned s = 64 - w;
    return (int64_t)(v << s) >> s;
}

/* A varbit value (at most 64 bits): its length in bits and its bits. */
typedef struct { uint64_t v; uint32_t n; } FlVarbit;

static inline int fl_varbit_eq(FlVarbit a, FlVarbit b) { return a.n == b.n && a.v == b.v; }

/* ``w`` bits (w <= 64) at bit offset ``off`` of a big-endian buffer. */
static inline uint64_t fl_get_bits(const uint8_t *p, unsigned off, unsigned w)
{
    unsigned first = off >> 3, last = (off + w - 1) >> 3, tail = 7 - ((off + w - 1) & 7);
    if (last - first < 8) {
        uint64_t acc = 0;
        for (unsigned i = first; i <= last; i++) acc = (acc << 8) | p[i];
        return (acc >> tail) & fl_mask(w);
    }
    unsigned __int128 acc = 0;
    for (unsigned i = first; i <= last; i++) acc = (acc << 8) | p[i];
    return (uint64_t)(acc >> tail) & fl_mask(w);
}

/* OR ``v`` (w bits) into a zeroed big-endian buffer at bit offset ``off``. */
static inline void fl_put_bits(uint8_t *p, unsigned off, unsigned w, uint64_t v)
{
    v &= fl_mask(w);
    unsigned first = off >> 3, last = (off + w - 1) >> 3, tail = 7 - ((off + w - 1) & 7);
    if (last - first < 8) {
        uint64_t acc = v << tail;
        for (unsigned i = last + 1; i-- > first;) { p[i] |= (uint8_t)acc; acc >>= 8; }
        return;
    }
    unsigned __int128 acc = (unsigned __int128)v << tail;
    for (unsigned i = last + 1; i-- > first;) { p[i] |= (uint8_t)acc; acc >>= 8; }
}

static inline uint64_t fl_shl_u(uint64_t v, uint64_t n, unsigned w) { return n >= w ? 0 : (v << n) & fl_mask(w); }
static inline int64_t fl_shl_s(int64_t v, uint64_t n, unsigned w) { return n >= w ? 0 : fl_sext((uint64_t)v << n, w); }
static inline uint64_t fl_shr_u(uint64_t v, uint64_t n) { return n >= 64 ? 0 : v >> n; }
static inline int64_t fl_shr_s(int64_t v, uint64_t n) { return n >= 64 ? (v < 0 ? -1 : 0) : v >> n; }
/* Python's x // 0 would raise; the Python engine gives 0 (RT.div/RT.mod). */
static inline uint64_t fl_div_u(uint64_t a, uint64_t b) { return b ? a / b : 0; }
static inline uint64_t fl_mod_u(uint64_t a, uint64_t b) { return b ? a % b : 0; }
static inline int64_t fl_div_s(int64_t a, int64_t b)
{   /* floor division, as Python's // */
    if (!b) return 0;
    int64_t q = a / b;
    if ((a % b != 0) && ((a < 0) != (b < 0))) q--;
    return q;
}
static inline int64_t fl_mod_s(int64_t a, int64_t b)
{
    if (!b) return 0;
    int64_t r = a % b;
    if (r != 0 && ((r < 0) != (b < 0))) r += b;
    return r;
}
static inline uint64_t fl_sat_add_u(uint64_t a, uint64_t b, unsigned w)
{
    uint64_t s;
    if (__builtin_add_overflow(a, b, &s) || s > fl_mask(w)) return fl_mask(w);
    return s;
}
static inline uint64_t fl_sat_sub_u(uint64_t a, uint64_t b) { return a > b ? a - b : 0; }
static inline int64_t fl_sat_s(__int128 v, unsigned w)
{
    __int128 hi = ((__int128)1 << (w - 1)) - 1, lo = -((__int128)1 << (w - 1));
    return (int64_t)(v > hi ? hi : v < lo ? lo : v);
}

/* Values of 65..128 bits: the same helpers on unsigned/signed __int128. */
typedef unsigned __int128 fl_u128;
typedef __int128 fl_s128;
#define FL_U128(hi, lo) ((((fl_u128)(hi)) << 64) | (fl_u128)(lo))

static inline fl_u128 fl_mask128(unsigned w) { return w >= 128 ? ~(fl_u128)0 : (((fl_u128)1 << w) - 1); }

static inline fl_s128 fl_sext128(fl_u128 v, unsigned w)
{
    if (w >= 128) return (fl_s128)v;
    unsigned s = 128 - w;
    return (fl_s128)(v << s) >> s;
}

static inline fl_u128 fl_get_bits128(const uint8_t *p, unsigned off, unsigned w)
{   /* w in 65..128: the top w-64 bits, then the low 64 */
    return FL_U128(fl_get_bits(p, off, w - 64), fl_get_bits(p, off + w - 64, 64));
}

static inline void fl_put_bits128(uint8_t *p, unsigned off, unsigned w, fl_u128 v)
{
    fl_put_bits(p, off, w - 64, (uint64_t)(v >> 64));
    fl_put_bits(p, off + w - 64, 64, (uint64_t)v);
}

static inline fl_u128 fl_shl_u128(fl_u128 v, fl_u128 n, unsigned w) { return n >= w ? 0 : (v << n) & fl_mask128(w); }
static inline fl_s128 fl_shl_s128(fl_s128 v, fl_u128 n, unsigned w) { return n >= w ? 0 : fl_sext128((fl_u128)v << n, w); }
static inline fl_u128 fl_shr_u128(fl_u128 v, fl_u128 n) { return n >= 128 ? 0 : v >> n; }
static inline fl_s128 fl_shr_s128(fl_s128 v, fl_u128 n) { return n >= 128 ? (v < 0 ? -1 : 0) : v >> n; }
static inline fl_u128 fl_div_u128(fl_u128 a, fl_u128 b) { return b ? a / b : 0; }
static inline fl_u128 fl_mod_u128(fl_u128 a, fl_u128 b) { return b ? a % b : 0; }
static inline fl_s128 fl_div_s128(fl_s128 a, fl_s128 b)
{
    if (!b) return 0;
    fl_s128 q = a / b;
    if ((a % b != 0) && ((a < 0) != (b < 0))) q--;
    return q;
}
static inline fl_s128 fl_mod_s128(fl_s128 a, fl_s128 b)
{
    if (!b) return 0;
    fl_s128 r = a % b;
    if (r != 0 && ((r < 0) != (b < 0))) r += b;
    return r;
}
static inline fl_u128 fl_sat_add_u128(fl_u128 a, fl_u128 b, unsigned w)
{
    fl_u128 s;
    if (__builtin_add_overflow(a, b, &s) || s > fl_mask128(w)) return fl_mask128(w);
    return s;
}
static inline fl_u128 fl_sat_sub_u128(fl_u128 a, fl_u128 b) { return a > b ? a - b : 0; }
static inline fl_s128 fl_sat_s128(fl_s128 a, fl_s128 b, int subtract, unsigned w)
{   /* a +/- b clamped to int<w>, w in 65..128 */
    fl_s128 hi = (fl_s128)(fl_mask128(w - 1)), lo = -hi - 1, r;
    int overflow = subtract ? __builtin_sub_overflow(a, b, &r) : __builtin_add_overflow(a, b, &r);
    if (overflow) return (subtract ? (a < 0) : (a < 0 && b < 0)) ? lo : hi;
    return r > hi ? hi : r < lo ? lo : r;
}

static PyObject *fl_u128_to_py(fl_u128 v)
{
    PyObject *hi = PyLong_FromUnsignedLongLong((uint64_t)(v >> 64)), *lo = PyLong_FromUnsignedLongLong((uint64_t)v);
    PyObject *shift = PyLong_FromLong(64), *shifted = NULL, *out = NULL;
    if (hi && lo && shift && (shifted = PyNumber_Lshift(hi, shift))) out = PyNumber_Or(shifted, lo);
    Py_XDECREF(hi); Py_XDECREF(lo); Py_XDECREF(shift); Py_XDECREF(shifted);
    return out;
}

static PyObject *fl_s128_to_py(fl_s128 v)
{
    if (v >= 0) return fl_u128_to_py((fl_u128)v);
    PyObject *magnitude = fl_u128_to_py((fl_u128)0 - (fl_u128)v);
    PyObject *out = magnitude ? PyNumber_Negative(magnitude) : NULL;
    Py_XDECREF(magnitude);
    return out;
}

/* ------------------------------------------------------------------ checksums and hashes */

/* RFC 1071 over two concatenated buffers (a possibly odd-length head, then the payload). */
static uint64_t fl_csum16(const uint8_t *a, Py_ssize_t na, const uint8_t *b, Py_ssize_t nb)
{
    uint64_t sum = 0;
    Py_ssize_t pos = 0;
    for (Py_ssize_t i = 0; i < na; i++, pos++) sum += (pos & 1) ? a[i] : (uint64_t)a[i] << 8;
    for (Py_ssize_t i = 0; i < nb; i++, pos++) sum += (pos & 1) ? b[i] : (uint64_t)b[i] << 8;
    while (sum >> 16) sum = (sum & 0xFFFF) + (sum >> 16);
    return ~sum & 0xFFFF;
}

static uint32_t fl_crc32_table[256];
static uint16_t fl_crc16_table[256];

static void fl_init_crc_tables(void)
{
    for (uint32_t n = 0; n < 256; n++) {
        uint32_t c = n;   /* reflected CRC-32/IEEE, as zlib */
        for (int k = 0; k < 8; k++) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
        fl_crc32_table[n] = c;
        uint16_t d = (uint16_t)n;   /* reflected CRC-16/ARC (poly 0x8005 reversed: 0xA001) */
        for (int k = 0; k < 8; k++) d = (d & 1) ? (uint16_t)(0xA001 ^ (d >> 1)) : (uint16_t)(d >> 1);
        fl_crc16_table[n] = d;
    }
}

static uint64_t fl_crc32(const uint8_t *a, Py_ssize_t na, const uint8_t *b, Py_ssize_t nb)
{
    uint32_t c = 0xFFFFFFFFu;
    for (Py_ssize_t i = 0; i < na; i++) c = fl_crc32_table[(c ^ a[i]) & 0xFF] ^ (c >> 8);
    for (Py_ssize_t i = 0; i < nb; i++) c = fl_crc32_table[(c ^ b[i]) & 0xFF] ^ (c >> 8);
    return c ^ 0xFFFFFFFFu;
}

static uint64_t fl_crc16(const uint8_t *a, Py_ssize_t na, const uint8_t *b, Py_ssize_t nb)
{
    uint16_t c = 0;
    for (Py_ssize_t i = 0; i < na; i++) c = (uint16_t)(fl_crc16_table[(c ^ a[i]) & 0xFF] ^ (c >> 8));
    for (Py_ssize_t i = 0; i < nb; i++) c = (uint16_t)(fl_crc16_table[(c ^ b[i]) & 0xFF] ^ (c >> 8));
    return c;
}

static uint64_t fl_xor16(const uint8_t *a, Py_ssize_t na, const uint8_t *b, Py_ssize_t nb)
{
    uint64_t out = 0;
    Py_ssize_t pos = 0;
    for (Py_ssize_t i = 0; i < na; i++, pos++) out ^= (pos & 1) ? a[i] : (uint64_t)a[i] << 8;
    for (Py_ssize_t i = 0; i < nb; i++, pos++) out ^= (pos & 1) ? b[i] : (uint64_t)b[i] << 8;
    return out;
}

static uint64_t fl_identity(const uint8_t *a, Py_ssize_t na, const uint8_t *b, Py_ssize_t nb)
{
    uint64_t out = 0;
    Py_ssize_t pos = 0;
    for (Py_ssize_t i = 0; i < na && pos < 8; i++, pos++) out = (out << 8) | a[i];
    for (Py_ssize_t i = 0; i < nb && pos < 8; i++, pos++) out = (out << 8) | b[i];
    return out;
}

enum { FL_CRC16, FL_CRC32, FL_CSUM16, FL_XOR16, FL_IDENTITY, FL_PY_HASH };

/* ------------------------------------------------------------------ the engine object */

#define FL_MAX_KEYS 8
#define FL_MAX_ARGS 8
#define FL_MEMO_SIZE 512           /* direct-mapped: a colliding key replaces the entry */

typedef struct {
    uint8_t used, hit;
    int16_t action;
    uint64_t key[FL_MAX_KEYS];
    uint64_t args[FL_MAX_ARGS];
    PyObject *entry;               /* the TableEntry hit (strong reference), NULL on a miss */
} FlMemo;

typedef struct {
    PyObject *table, *dict, *lookup, *version;   /* version: the object the memo was filled under */
    PyObject *action_index;                      /* action name -> index in the table's list */
    int nkeys, nslots, memoize;
    const int *key_kinds;
    FlMemo *memo;
    FlMemo scratch;                              /* the result when not memoized */
} FlTable;

typedef struct {
    PyObject *values;              /* the Register's list, updated in place (strong reference) */
    Py_ssize_t size;
    uint64_t mask;
    unsigned width;
    int is_signed;
} FlRegister;

typedef struct {
    PyObject *packets, *bytes;
    Py_ssize_t size;
} FlCounter;

struct FlEngine {
    PyObject_HEAD
    PyObject *state, *rt;          /* RuntimeState, the codegen module (RT of the Python engine) */
    int ntables, nregisters, ncounters, nobjects;
    FlTable *tables;
    FlRegister *registers;
    FlCounter *counters;
    PyObject **objects;            /* meters, value sets: called through Python */
    PyObject *hash_unit, *digests;
};

static PyObject *fl_str_version, *fl_str_default, *fl_str_action, *fl_str_name, *fl_str_args,
    *fl_str_resolve, *fl_str_packets, *fl_str_bytes, *fl_str_random_source, *fl_str_randint,
    *fl_str_compute, *fl_str_append, *fl_str_execute, *fl_str_matches, *fl_str_log_msg,
    *fl_str_failed_assertion, *fl_str_execute_direct_meter, *fl_str_meter, *fl_str_count;

static int fl_init_strings(void)
{
#define FL_S(var, text) if (!(var = PyUnicode_InternFromString(text))) return -1;
    FL_S(fl_str_version, "version") FL_S(fl_str_default, "default") FL_S(fl_str_action, "action")
    FL_S(fl_str_name, "name") FL_S(fl_str_args, "args") FL_S(fl_str_resolve, "resolve")
    FL_S(fl_str_packets, "packets") FL_S(fl_str_bytes, "bytes")
    FL_S(fl_str_random_source, "random_source") FL_S(fl_str_randint, "randint")
    FL_S(fl_str_compute, "compute") FL_S(fl_str_append, "append") FL_S(fl_str_execute, "execute")
    FL_S(fl_str_matches, "matches") FL_S(fl_str_log_msg, "log_msg")
    FL_S(fl_str_failed_assertion, "failed_assertion")
    FL_S(fl_str_execute_direct_meter, "execute_direct_meter") FL_S(fl_str_meter, "meter")
    FL_S(fl_str_count, "count")
#undef FL_S
    fl_init_crc_tables();
    return 0;
}

static void fl_memo_clear(FlTable *t)
{
    if (!t->memo) return;
    for (int i = 0; i < FL_MEMO_SIZE; i++) {
        Py_CLEAR(t->memo[i].entry);
        t->memo[i].used = 0;
    }
}

static void fl_engine_dealloc(FlEngine *e)
{
    for (int i = 0; i < e->ntables; i++) {
        FlTable *t = &e->tables[i];
        fl_memo_clear(t);
        PyMem_Free(t->memo);
        Py_XDECREF(t->table); Py_XDECREF(t->dict); Py_XDECREF(t->lookup);
        Py_XDECREF(t->version); Py_XDECREF(t->action_index); Py_XDECREF(t->scratch.entry);
    }
    for (int i = 0; i < e->nregisters; i++) Py_XDECREF(e->registers[i].values);
    for (int i = 0; i < e->ncounters; i++) { Py_XDECREF(e->counters[i].packets); Py_XDECREF(e->counters[i].bytes); }
    for (int i = 0; i < e->nobjects; i++) Py_XDECREF(e->objects[i]);
    PyMem_Free(e->tables); PyMem_Free(e->registers); PyMem_Free(e->counters); PyMem_Free(e->objects);
    Py_XDECREF(e->state); Py_XDECREF(e->rt); Py_XDECREF(e->hash_unit); Py_XDECREF(e->digests);
    Py_TYPE(e)->tp_free((PyObject *)e);
}

static PyTypeObject FlEngineType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "fabriclab_native.Engine",
    .tp_basicsize = sizeof(FlEngine),
    .tp_dealloc = (destructor)fl_engine_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "the runtime state a native pipeline instance works on",
};

static PyObject *fl_getitem_str(PyObject *mapping, const char *key)
{
    PyObject *k = PyUnicode_FromString(key);
    if (!k) return NULL;
    PyObject *v = PyObject_GetItem(mapping, k);
    Py_DECREF(k);
    return v;
}

/* The program's runtime objects, described by the generated module's tables of names. */
typedef struct { const char *name; int nkeys; const int *key_kinds; int memoize; const char *const *actions; int nactions; } FlTableSpec;
typedef struct { const char *name; unsigned width; int is_signed; } FlRegisterSpec;
typedef struct { const char *collection; const char *name; } FlObjectSpec;   /* state.<collection>[name] */

static FlEngine *fl_engine_new(PyObject *state, PyObject *rt,
                               const FlTableSpec *tables, int ntables,
                               const FlRegisterSpec *registers, int nregisters,
                               const char *const *counters, int ncounters,
                               const FlObjectSpec *objects, int nobjects)
{
    FlEngine *e = PyObject_New(FlEngine, &FlEngineType);
    if (!e) return NULL;
    e->ntables = e->nregisters = e->ncounters = e->nobjects = 0;
    e->tables = NULL; e->registers = NULL; e->counters = NULL; e->objects = NULL;
    e->state = Py_NewRef(state); e->rt = Py_NewRef(rt);
    e->hash_unit = PyObject_GetAttrString(state, "hash_unit");
    e->digests = PyObject_GetAttrString(state, "digests");
    e->tables = PyMem_Calloc(ntables ? ntables : 1, sizeof(FlTable));
    e->registers = PyMem_Calloc(nregisters ? nregisters : 1, sizeof(FlRegister));
    e->counters = PyMem_Calloc(ncounters ? ncounters : 1, sizeof(FlCounter));
    e->objects = PyMem_Calloc(nobjects ? nobjects : 1, sizeof(PyObject *));
    if (!e->hash_unit || !e->digests || !e->tables || !e->registers || !e->counters || !e->objects) goto fail;
    PyObject *coll = PyObject_GetAttrString(state, "tables");
    if (!coll) goto fail;
    for (int i = 0; i < ntables; i++, e->ntables++) {
        FlTable *t = &e->tables[i];
        t->nkeys = tables[i].nkeys;
        t->key_kinds = tables[i].key_kinds;
        t->nslots = 0;
        for (int k = 0; k < t->nkeys; k++) t->nslots += t->key_kinds[k] == 2 ? 2 : 1;
        t->memoize = tables[i].memoize;
        t->table = fl_getitem_str(coll, tables[i].name);
        if (!t->table) { Py_DECREF(coll); goto fail; }
        t->dict = PyObject_GetAttrString(t->table, "__dict__");
        t->lookup = PyObject_GetAttrString(t->table, "lookup");
        t->action_index = PyDict_New();
        if (!t->dict || !t->lookup || !t->action_index) { Py_DECREF(coll); goto fail; }
        for (int a = 0; a < tables[i].nactions; a++) {
            PyObject *idx = PyLong_FromLong(a);
            int rc = idx ? PyDict_SetItemString(t->action_index, tables[i].actions[a], idx) : -1;
            Py_XDECREF(idx);
            if (rc < 0) { Py_DECREF(coll); goto fail; }
        }
        if (t->memoize && !(t->memo = PyMem_Calloc(FL_MEMO_SIZE, sizeof(FlMemo)))) { Py_DECREF(coll); goto fail; }
    }
    Py_DECREF(coll);
    coll = PyObject_GetAttrString(state, "registers");
    if (!coll) goto fail;
    for (int i = 0; i < nregisters; i++, e->nregisters++) {
        FlRegister *r = &e->registers[i];
        PyObject *reg = fl_getitem_str(coll, registers[i].name);
        if (!reg) { Py_DECREF(coll); goto fail; }
        r->values = PyObject_GetAttrString(reg, "values");
        Py_DECREF(reg);
        if (!r->values || !PyList_Check(r->values)) { Py_DECREF(coll); goto fail; }
        r->size = PyList_GET_SIZE(r->values);
        r->width = registers[i].width;
        r->mask = fl_mask(registers[i].width);
        r->is_signed = registers[i].is_signed;
    }
    Py_DECREF(coll);
    coll = PyObject_GetAttrString(state, "counters");
    if (!coll) goto fail;
    for (int i = 0; i < ncounters; i++, e->ncounters++) {
        FlCounter *c = &e->counters[i];
        PyObject *ctr = fl_getitem_str(coll, counters[i]);
        if (!ctr) { Py_DECREF(coll); goto fail; }
        c->packets = PyObject_GetAttrString(ctr, "packets");
        c->bytes = PyObject_GetAttrString(ctr, "bytes");
        Py_DECREF(ctr);
        if (!c->packets || !c->bytes || !PyList_Check(c->packets) || !PyList_Check(c->bytes)) { Py_DECREF(coll); goto fail; }
        c->size = PyList_GET_SIZE(c->packets);
    }
    Py_DECREF(coll);
    for (int i = 0; i < nobjects; i++, e->nobjects++) {
        if (strcmp(objects[i].collection, "value_sets") == 0) {
            e->objects[i] = PyObject_CallMethod(rt, "value_set", "Os", state, objects[i].name);
        } else {
            coll = PyObject_GetAttrString(state, objects[i].collection);
            e->objects[i] = coll ? fl_getitem_str(coll, objects[i].name) : NULL;
            Py_XDECREF(coll);
        }
        if (!e->objects[i]) goto fail;
    }
    return e;
fail:
    Py_DECREF(e);
    return NULL;
}

/* ------------------------------------------------------------------ tables */

/* A key as the Python engine passes it: kind 0 unsigned, 1 signed, 2 unsigned in two slots. */
static inline PyObject *fl_key_object(const uint64_t *slot, int kind)
{
    if (kind == 2) return fl_u128_to_py(FL_U128(slot[0], slot[1]));
    return kind ? PyLong_FromLongLong((int64_t)slot[0]) : PyLong_FromUnsignedLongLong(slot[0]);
}

/* Fill ``m`` from an ActionCall: its action's index in the table and its arguments. */
static void fl_memo_set_call(FlHead *h, FlTable *t, FlMemo *m, PyObject *call)
{
    if (!call) fl_abort(h);
    PyObject *name = PyObject_GetAttr(call, fl_str_name);
    PyObject *args = name ? PyObject_GetAttr(call, fl_str_args) : NULL;
    Py_DECREF(call);
    if (!args) { Py_XDECREF(name); fl_abort(h); }
    PyObject *idx = PyDict_GetItemWithError(t->action_index, name);
    if (!idx) {
        if (!PyErr_Occurred()) PyErr_SetObject(PyExc_KeyError, name);
        Py_DECREF(name); Py_DECREF(args); fl_abort(h);
    }
    Py_DECREF(name);
    m->action = (int16_t)PyLong_AsLong(idx);
    PyObject *seq = PySequence_Fast(args, "action arguments");
    Py_DECREF(args);
    if (!seq) fl_abort(h);
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    if (n > FL_MAX_ARGS) { Py_DECREF(seq); PyErr_SetString(PyExc_ValueError, "too many action arguments"); fl_abort(h); }
    for (Py_ssize_t i = 0; i < n; i++) {
        m->args[i] = PyLong_AsUnsignedLongLong(PySequence_Fast_GET_ITEM(seq, i));
        if (m->args[i] == (uint64_t)-1 && PyErr_Occurred()) { Py_DECREF(seq); fl_abort(h); }
    }
    Py_DECREF(seq);
}

/* ``table.lookup(key)`` through the memo; ``selector`` (a tuple of (value, width) pairs) is
 * given for tables with an action profile/selector, which are never memoized. */
static FlMemo *fl_table_lookup(FlHead *h, FlTable *t, const uint64_t *key, PyObject *selector)
{
    FlMemo *m;
    size_t slot = 0;
    if (t->memoize) {
        PyObject *v = PyDict_GetItemWithError(t->dict, fl_str_version);
        if (!v) { if (!PyErr_Occurred()) PyErr_SetString(PyExc_AttributeError, "table has no version"); fl_abort(h); }
        if (v != t->version) {   /* the control plane changed the table: forget everything */
            fl_memo_clear(t);
            Py_INCREF(v);
            Py_XSETREF(t->version, v);
        }
        uint64_t hash = 0x9E3779B97F4A7C15ull;
        for (int i = 0; i < t->nslots; i++) hash = (hash ^ key[i]) * 0x100000001B3ull, hash ^= hash >> 29;
        slot = (size_t)(hash % FL_MEMO_SIZE);
        m = &t->memo[slot];
        if (m->used) {
            int same = 1;
            for (int i = 0; i < t->nslots; i++) if (m->key[i] != key[i]) { same = 0; break; }
            if (same) return m;
        }
    } else {
        m = &t->scratch;
    }
    Py_CLEAR(m->entry);
    m->used = 0;
    PyObject *tuple = PyTuple_New(t->nkeys);
    if (!tuple) fl_abort(h);
    for (int i = 0, s = 0; i < t->nkeys; s += t->key_kinds[i] == 2 ? 2 : 1, i++) {
        PyObject *k = fl_key_object(&key[s], t->key_kinds[i]);
        if (!k) { Py_DECREF(tuple); fl_abort(h); }
        PyTuple_SET_ITEM(tuple, i, k);
    }
    PyObject *entry = PyObject_CallOneArg(t->lookup, tuple);
    Py_DECREF(tuple);
    if (!entry) fl_abort(h);
    PyObject *call;
    if (entry == Py_None) {
        Py_DECREF(entry);
        m->hit = 0;
        call = PyObject_GetAttr(t->table, fl_str_default);
    } else {
        m->hit = 1;
        m->entry = entry;
        if (selector) call = PyObject_CallMethodObjArgs(t->table, fl_str_resolve, entry, selector, NULL);
        else call = PyObject_GetAttr(entry, fl_str_action);
    }
    fl_memo_set_call(h, t, m, call);
    for (int i = 0; i < t->nslots; i++) m->key[i] = key[i];
    m->used = 1;
    return m;
}

/* The direct counter of the entry hit: entry.packets += 1; entry.bytes += packet_length. */
static void fl_count_entry(FlHead *h, PyObject *entry, uint64_t nbytes)
{
    PyObject *names[2] = {fl_str_packets, fl_str_bytes};
    uint64_t add[2] = {1, nbytes};
    for (int i = 0; i < 2; i++) {
        PyObject *old = PyObject_GetAttr(entry, names[i]);
        if (!old) fl_abort(h);
        PyObject *inc = PyLong_FromUnsignedLongLong(add[i]);
        PyObject *sum = inc ? PyNumber_Add(old, inc) : NULL;
        Py_DECREF(old); Py_XDECREF(inc);
        if (!sum) fl_abort(h);
        int rc = PyObject_SetAttr(entry, names[i], sum);
        Py_DECREF(sum);
        if (rc < 0) fl_abort(h);
    }
}

static uint64_t fl_direct_meter(FlHead *h, PyObject *entry, const char *unit, uint64_t nbytes)
{
    PyObject *r = PyObject_CallMethod(h->eng->rt, "execute_direct_meter", "OsKL", entry, unit,
                                      (unsigned long long)nbytes, (long long)h->now_us);
    if (!r) fl_abort(h);
    uint64_t v = PyLong_AsUnsignedLongLong(r);
    Py_DECREF(r);
    if (PyErr_Occurred()) fl_abort(h);
    return v;
}

/* ------------------------------------------------------------------ registers, counters */

static inline uint64_t fl_pyint_u(FlHead *h, PyObject *o)
{
    uint64_t v = PyLong_AsUnsignedLongLong(o);
    if (v == (uint64_t)-1 && PyErr_Occurred()) fl_abort(h);
    return v;
}

/* Register.dp_read: 0 out of range; int<W> registers give the signed value. */
static inline uint64_t fl_register_read(FlHead *h, FlRegister *r, uint64_t index)
{
    if (index >= (uint64_t)r->size) return 0;
    uint64_t raw = fl_pyint_u(h, PyList_GET_ITEM(r->values, (Py_ssize_t)index));
    return r->is_signed ? (uint64_t)fl_sext(raw, r->width) : raw;
}

static inline void fl_list_set(FlHead *h, PyObject *list, Py_ssize_t i, PyObject *v)
{
    if (!v) fl_abort(h);
    PyObject *old = PyList_GET_ITEM(list, i);
    PyList_SET_ITEM(list, i, v);
    Py_DECREF(old);
}

static inline void fl_register_write(FlHead *h, FlRegister *r, uint64_t index, uint64_t value)
{
    if (index >= (uint64_t)r->size) return;
    fl_list_set(h, r->values, (Py_ssize_t)index, PyLong_FromUnsignedLongLong(value & r->mask));
}

static inline void fl_list_add(FlHead *h, PyObject *list, Py_ssize_t i, uint64_t add)
{
    PyObject *old = PyList_GET_ITEM(list, i);
    unsigned long long cur = PyLong_AsUnsignedLongLong(old);
    PyObject *v;
    if (cur == (unsigned long long)-1 && PyErr_Occurred()) {   /* beyond 64 bits: Python adds */
        PyErr_Clear();
        PyObject *inc = PyLong_FromUnsignedLongLong(add);
        v = inc ? PyNumber_Add(old, inc) : NULL;
        Py_XDECREF(inc);
    } else if (cur + add < cur) {
        PyObject *a = PyLong_FromUnsignedLongLong(cur), *b = PyLong_FromUnsignedLongLong(add);
        v = (a && b) ? PyNumber_Add(a, b) : NULL;
        Py_XDECREF(a); Py_XDECREF(b);
    } else {
        v = PyLong_FromUnsignedLongLong(cur + add);
    }
    fl_list_set(h, list, i, v);
}

static inline void fl_counter_count(FlHead *h, FlCounter *c, uint64_t index, uint64_t nbytes)
{
    if (index >= (uint64_t)c->size) return;
    fl_list_add(h, c->packets, (Py_ssize_t)index, 1);
    fl_list_add(h, c->bytes, (Py_ssize_t)index, nbytes);
}

/* ------------------------------------------------------------------ calls into Python */

static uint64_t fl_call_u64(FlHead *h, PyObject *r)
{
    if (!r) fl_abort(h);
    uint64_t v;
    if (PyBool_Check(r)) v = (r == Py_True);
    else {
        PyObject *mask = PyLong_FromUnsignedLongLong(~UINT64_C(0));
        PyObject *masked = mask ? PyNumber_And(r, mask) : NULL;
        Py_XDECREF(mask);
        if (!masked) { Py_DECREF(r); fl_abort(h); }
        v = PyLong_AsUnsignedLongLong(masked);
        Py_DECREF(masked);
    }
    Py_DECREF(r);
    if (PyErr_Occurred()) fl_abort(h);
    return v;
}

/* RT.random_source.randint(lo, hi), fetched every time: tests reseed or replace it. */
static int64_t fl_random(FlHead *h, PyObject *lo, PyObject *hi)
{
    if (!lo || !hi) { Py_XDECREF(lo); Py_XDECREF(hi); fl_abort(h); }
    PyObject *src = PyObject_GetAttr(h->eng->rt, fl_str_random_source);
    PyObject *r = src ? PyObject_CallMethodObjArgs(src, fl_str_randint, lo, hi, NULL) : NULL;
    Py_XDECREF(src); Py_DECREF(lo); Py_DECREF(hi);
    if (!r) fl_abort(h);
    long long v = PyLong_AsLongLong(r);
    if (v == -1 && PyErr_Occurred()) {   /* beyond int64: keep the low bits */
        PyErr_Clear();
        v = (long long)fl_call_u64(h, Py_NewRef(r));
    }
    Py_DECREF(r);
    return v;
}

/* A hash the C code does not implement (custom CRCs, random): S.hash_unit.compute(name, data). */
static uint64_t fl_py_hash(FlHead *h, const char *algorithm, const uint8_t *a, Py_ssize_t na,
                           const uint8_t *b, Py_ssize_t nb)
{
    PyObject *data = PyBytes_FromStringAndSize(NULL, na + nb);
    if (!data) fl_abort(h);
    memcpy(PyBytes_AS_STRING(data), a, na);
    if (nb) memcpy(PyBytes_AS_STRING(data) + na, b, nb);
    PyObject *r = PyObject_CallMethod(h->eng->hash_unit, "compute", "sO", algorithm, data);
    Py_DECREF(data);
    return fl_call_u64(h, r);
}

static uint64_t fl_hash(FlHead *h, int algo, const char *name, const uint8_t *a, Py_ssize_t na,
                        const uint8_t *b, Py_ssize_t nb)
{
    switch (algo) {
    case FL_CRC16: return fl_crc16(a, na, b, nb);
    case FL_CRC32: return fl_crc32(a, na, b, nb);
    case FL_CSUM16: return fl_csum16(a, na, b, nb);
    case FL_XOR16: return fl_xor16(a, na, b, nb);
    case FL_IDENTITY: return fl_identity(a, na, b, nb);
    default: return fl_py_hash(h, name, a, na, b, nb);
    }
}

static void fl_raise_stack_index(FlHead *h)
{
    PyErr_SetString(PyExc_IndexError, "header stack index out of range");
    fl_abort(h);
}

static inline uint64_t fl_index(FlHead *h, uint64_t i, uint64_t size)
{
    if (i >= size) fl_raise_stack_index(h);
    return i;
}

/* ------------------------------------------------------------------ payload */

static inline const uint8_t *fl_payload(FlHead *h, Py_ssize_t *len)
{
    Py_ssize_t n = PyBytes_GET_SIZE(h->frame);
    Py_ssize_t off = h->payload_off < n ? h->payload_off : n;
    *len = n - off;
    return (const uint8_t *)PyBytes_AS_STRING(h->frame) + off;
}

#endif
