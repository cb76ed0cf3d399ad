/* The traffic manager's hot path in C: the same behaviour as traffic_manager.TrafficManager and
 * pfc.PfcState (the Python classes are the reference; tests/test_tm_native_differential.py
 * drives both with the same workloads and compares every transmission, QueueMeta and stats()).
 *
 * Built by native_build.load_shipped("native_tm.c"); the module name is the placeholder below.
 * traffic_manager.NativeTrafficManager subclasses `Core` and turns a ResolvedConfig into the
 * plain values Core.__init__ takes, so the C side never walks config objects.
 *
 * Frames: IEEE 802.1Qbb PFC (opcode 0x0101, class-enable vector, eight timers in quanta of 512
 * bit times, IEEE 802.3 31B.2) and IEEE 802.3x PAUSE (opcode 0x0001), destination
 * 01:80:C2:00:00:01, EtherType 0x8808, padded to 60 bytes (the FCS is the kernel's), as pfc.py.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

#define NUM_PRIO 8
#define NEVER ((int64_t)1 << 62)
#define WIRE_OVERHEAD 24          /* preamble+SFD 8, IFG 12, FCS 4 */
#define MIN_WIRE_FRAME 64         /* with FCS */
#define PFC_FRAME_LEN 60          /* minimum frame without FCS */
#define QUANTUM_BITS 512
#define DIRECT_PORTS 1024         /* port numbers below this are found by index */

static PyObject *tm_log, *pfc_log;      /* logging.getLogger(...) of the Python modules */
static PyObject *str_egress_port, *str_priority, *str_length, *str_ingress_port, *str_egress_frame,
    *str_frames, *str_jobs, *str_tx, *str_rx, *str_wd, *str_as_dict;

/* drop reasons, in the order stats() lists them */
enum { D_BUFFER_FULL, D_QUEUE_LIMIT, D_PIPELINE_SWAP, D_NO_PIPELINE, D_PIPELINE_ERROR, D_PFCWD, D_HEADROOM_OVERFLOW,
       D_PORT_REASONS };
static const char *PORT_REASONS[D_PORT_REASONS] = {"buffer_full", "queue_limit", "pipeline_swap",
                                                   "no_pipeline", "pipeline_error", "pfcwd", "headroom_overflow"};
enum { D_NO_SUCH_PORT, D_MAC_CONTROL_IGNORED, D_TM_REASONS };
static const char *TM_REASONS[D_TM_REASONS] = {"no_such_port", "mac_control_ignored"};

/* ---- a FIFO of entries (queued jobs, control frames, the delay line) ---- */

typedef struct {
    PyObject *obj;          /* the job (queues) or the frame (control, delay line); owned */
    int64_t t;              /* enqueue time (queues) or delivery time (delay line) */
    int64_t length;
    int64_t ingress;        /* ingress port number, -1 if none */
    Py_ssize_t depth;       /* queue depth seen at enqueue */
} Entry;

typedef struct {
    Entry *buf;
    Py_ssize_t cap, head, count;
} Ring;

static int ring_push(Ring *r, Entry e) {
    if (r->count == r->cap) {
        Py_ssize_t cap = r->cap ? r->cap * 2 : 16;
        Entry *buf = PyMem_Malloc(cap * sizeof(Entry));
        if (!buf) { PyErr_NoMemory(); return -1; }
        for (Py_ssize_t i = 0; i < r->count; i++) buf[i] = r->buf[(r->head + i) % r->cap];
        PyMem_Free(r->buf);
        r->buf = buf; r->cap = cap; r->head = 0;
    }
    r->buf[(r->head + r->count) % r->cap] = e;
    r->count++;
    return 0;
}

static inline Entry *ring_front(Ring *r) { return &r->buf[r->head]; }

static Entry ring_pop(Ring *r) {
    Entry e = r->buf[r->head];
    r->head = (r->head + 1) % r->cap;
    r->count--;
    return e;
}

static void ring_clear(Ring *r) {
    while (r->count) { Entry e = ring_pop(r); Py_DECREF(e.obj); }
    PyMem_Free(r->buf);
    r->buf = NULL; r->cap = r->head = 0;
}

/* ---- one port: PFC state (pfc.PfcState) and queues (traffic_manager._Port) ---- */

typedef struct {
    int64_t rate_bps, pause_quanta, pause_ns, headroom_limit;
    int64_t paused_until[NUM_PRIO], pause_horizon;
    int64_t pause_start[NUM_PRIO]; char pausing[NUM_PRIO];   /* pausing: pause_start is set */
    int64_t paused_ns_closed[NUM_PRIO], pfc_rx[NUM_PRIO], pause_rx;
    unsigned pause_seen, wd_ignore;   /* a pause came since the watchdog looked; stormed: not obeyed */
    int64_t shared[NUM_PRIO], headroom[NUM_PRIO];
    char xoff[NUM_PRIO]; int xoff_count;
    int64_t refresh_at[NUM_PRIO], pfc_tx[NUM_PRIO], xoff_events[NUM_PRIO], headroom_overflow[NUM_PRIO],
        max_headroom[NUM_PRIO], max_ingress_bytes[NUM_PRIO];
} Pfc;

typedef struct {
    int64_t number;
    PyObject *number_obj;               /* the number as a Python int, for transmit() */
    PyObject *rate_obj;                 /* rate_bps as given (None for an unshaped port) */
    int64_t delay_ns, ns_per_byte_q16;
    Pfc *pfc;                           /* NULL: no PFC (the CPU port) */
    unsigned char mac[6];
    Ring queues[NUM_PRIO];
    int64_t qbytes[NUM_PRIO];
    unsigned nonempty;
    Ring control, delay_line;
    int64_t busy_until, due;
    int active;
    int64_t deficit[NUM_PRIO];
    int rr, rr_credited;
    int64_t enqueued[NUM_PRIO], dequeued[NUM_PRIO], max_qdepth[NUM_PRIO], max_qbytes[NUM_PRIO];
    int64_t drops[NUM_PRIO][D_PORT_REASONS];
    int64_t tx_frames, tx_bytes, control_tx;
    /* PFC watchdog: watched and stormed priorities; time left before a storm (operational) or a
     * restoration (stormed); dequeues at the last look; events */
    unsigned wd_watch, wd_stormed;
    int64_t wd_left[NUM_PRIO], wd_deq[NUM_PRIO], wd_storms[NUM_PRIO], wd_restores[NUM_PRIO];
} Port;

typedef struct {
    PyObject_HEAD
    PyObject *resolved, *transmit, *pipeline, *pfc_event, *lossless;   /* never NULL (Core_new) */
    int initialised;
    int64_t now;
    unsigned lossless_mask, strict_mask;
    double alpha;
    int has_queue_limit, has_xoff, has_xon;
    int64_t queue_limit, xoff_bytes, xon_bytes, xon_offset, shared_bytes;
    int dwrr;
    int64_t quantum[NUM_PRIO];
    int64_t shared_used, headroom_used, max_shared_used;
    int64_t drops[D_TM_REASONS];
    int wd_drop;                         /* PFC watchdog action: drop (1) or forward (0) */
    int64_t wd_detection, wd_restoration, wd_poll, wd_next;
    Port **ports;                        /* in the order they were added (a dict's order) */
    Py_ssize_t nports;
    Port *direct[DIRECT_PORTS];
} Core;

static const int HIGHEST_SET[256] = {
#define H1(m) ((m) >= 128 ? 7 : (m) >= 64 ? 6 : (m) >= 32 ? 5 : (m) >= 16 ? 4 : (m) >= 8 ? 3 : (m) >= 4 ? 2 : (m) >= 2 ? 1 : (m) >= 1 ? 0 : -1)
#define H4(m) H1(m), H1(m + 1), H1(m + 2), H1(m + 3)
#define H16(m) H4(m), H4(m + 4), H4(m + 8), H4(m + 12)
#define H64(m) H16(m), H16(m + 16), H16(m + 32), H16(m + 48)
    H64(0), H64(64), H64(128), H64(192)
};

static Port *find_port(Core *self, int64_t number) {
    if (number >= 0 && number < DIRECT_PORTS) return self->direct[number];
    for (Py_ssize_t i = 0; i < self->nports; i++)
        if (self->ports[i]->number == number) return self->ports[i];
    return NULL;
}

static inline int64_t floordiv(int64_t a, int64_t b) {
    int64_t q = a / b;
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

static inline int64_t quanta_to_ns(int64_t quanta, int64_t rate_bps) {
    return floordiv(quanta * QUANTUM_BITS * 1000000000LL, rate_bps);
}

/* ---- PFC (pfc.PfcState) ---- */

static void pfc_pause(Pfc *p, int q, int64_t quanta, int64_t now) {
    if (p->pausing[q])   /* close the running interval where it ended (or now, if cut short) */
        p->paused_ns_closed[q] += (p->paused_until[q] < now ? p->paused_until[q] : now) - p->pause_start[q];
    if (quanta) {
        p->pausing[q] = 1;
        p->pause_start[q] = now;
        p->paused_until[q] = now + quanta_to_ns(quanta, p->rate_bps);
        if (p->paused_until[q] > p->pause_horizon) p->pause_horizon = p->paused_until[q];
    } else {
        p->pausing[q] = 0;
        p->paused_until[q] = now;
    }
}

static void pfc_obey(Pfc *p, int q, int64_t quanta, int64_t now) {
    if (quanta) p->pause_seen |= 1u << q;
    if (!(p->wd_ignore >> q & 1)) pfc_pause(p, q, quanta, now);
}

static int64_t pfc_paused_ns(Pfc *p, int q, int64_t now) {
    int64_t total = p->paused_ns_closed[q];
    if (p->pausing[q]) {
        int64_t d = (p->paused_until[q] < now ? p->paused_until[q] : now) - p->pause_start[q];
        if (d > 0) total += d;
    }
    return total;
}

/* bytes arriving on this port at priority q; returns those taken from the shared buffer */
/* bytes arriving on this port at priority q: *taken = those taken from the shared buffer, or
 * -1 when the headroom cannot hold them (the packet is dropped, as pfc.py's charge) */
static int pfc_charge(Pfc *p, int64_t port, int q, int64_t length, int64_t xoff, int64_t *taken) {
    if (!p->headroom[q] && p->shared[q] + length <= xoff) {
        p->shared[q] += length;
        *taken = length;
    } else {
        if (p->headroom[q] + length > p->headroom_limit) {
            p->headroom_overflow[q]++;
            *taken = -1;
            if (p->headroom_overflow[q] == 1) {
                PyObject *r = PyObject_CallMethod(
                    pfc_log, "error", "sLLLLL",
                    "port %d priority %d: PFC headroom overflow (%d + %d > %d bytes), packet dropped: "
                    "configuration error, raise pfc.headroom or pfc.response_time in switch.yaml, or "
                    "lower the rates if the switch is CPU-bound (its socket backlog is in flight too); "
                    "logged once",
                    (long long)port, (long long)q, (long long)p->headroom[q], (long long)length,
                    (long long)p->headroom_limit);
                if (!r) return -1;
                Py_DECREF(r);
            }
            return 0;
        }
        p->headroom[q] += length;
        *taken = 0;
        if (p->headroom[q] > p->max_headroom[q]) p->max_headroom[q] = p->headroom[q];
    }
    int64_t used = p->shared[q] + p->headroom[q];
    if (used > p->max_ingress_bytes[q]) p->max_ingress_bytes[q] = used;
    return 0;
}

static int64_t pfc_release(Pfc *p, int q, int64_t length) {
    int64_t from_headroom = p->headroom[q] < length ? p->headroom[q] : length;
    p->headroom[q] -= from_headroom;
    p->shared[q] -= length - from_headroom;
    return length - from_headroom;
}

/* records an XOFF (pause) or XON sent for q; returns the frame's timer */
static int64_t pfc_pause_frame_timer(Pfc *p, int q, int pause, int64_t now) {
    p->pfc_tx[q]++;
    if (pause) {
        if (!p->xoff[q]) { p->xoff_events[q]++; p->xoff_count++; }
        p->xoff[q] = 1;
        /* refresh at half the pause time, so the peer never resumes while we are congested */
        p->refresh_at[q] = now + (p->pause_ns / 2 > 1 ? p->pause_ns / 2 : 1);
        return p->pause_quanta;
    }
    if (p->xoff[q]) p->xoff_count--;
    p->xoff[q] = 0;
    p->refresh_at[q] = NEVER;
    return 0;
}

static PyObject *build_pfc_frame(const unsigned char *src_mac, int q, int64_t quanta) {
    PyObject *frame = PyBytes_FromStringAndSize(NULL, PFC_FRAME_LEN);
    if (!frame) return NULL;
    unsigned char *b = (unsigned char *)PyBytes_AS_STRING(frame);
    static const unsigned char dst[6] = {0x01, 0x80, 0xC2, 0x00, 0x00, 0x01};
    memset(b, 0, PFC_FRAME_LEN);
    memcpy(b, dst, 6);
    memcpy(b + 6, src_mac, 6);
    b[12] = 0x88; b[13] = 0x08;          /* MAC Control */
    b[14] = 0x01; b[15] = 0x01;          /* PFC */
    b[17] = (unsigned char)(1u << q);    /* class-enable vector, upper byte zero */
    b[18 + 2 * q] = (unsigned char)(quanta >> 8);
    b[19 + 2 * q] = (unsigned char)quanta;
    return frame;
}

/* ---- the traffic manager ---- */

static void refresh(Core *self, Port *port) {
    Pfc *pfc = port->pfc;
    int64_t due;
    if (port->control.count) {
        due = port->busy_until;
    } else if (port->nonempty) {
        due = port->busy_until;
        if (pfc && pfc->pause_horizon > due) {
            /* the earliest a non-empty queue may send: its pause's end */
            int64_t ready = NEVER;
            for (int q = NUM_PRIO - 1; q >= 0; q--)
                if (port->nonempty >> q & 1 && pfc->paused_until[q] < ready) ready = pfc->paused_until[q];
            if (ready > due) due = ready;
        }
    } else {
        due = NEVER;
    }
    if (port->delay_line.count && ring_front(&port->delay_line)->t < due) due = ring_front(&port->delay_line)->t;
    if (pfc && pfc->xoff_count) {
        int64_t r = pfc->refresh_at[0];
        for (int q = 1; q < NUM_PRIO; q++) if (pfc->refresh_at[q] < r) r = pfc->refresh_at[q];
        if (r < due) due = r;
    }
    port->due = due;
    port->active = due != NEVER;
}

static int call_pfc_event(Core *self, int64_t now, int64_t port, int q, int pause, PyObject *direction) {
    if (self->pfc_event == Py_None) return 0;
    PyObject *r = PyObject_CallFunction(self->pfc_event, "LLiOO", (long long)now, (long long)port, q,
                                        pause ? Py_True : Py_False, direction);
    if (!r) return -1;
    Py_DECREF(r);
    return 0;
}

static int send_pfc(Core *self, Port *port, int q, int pause, int64_t now) {
    int64_t quanta = pfc_pause_frame_timer(port->pfc, q, pause, now);
    PyObject *frame = build_pfc_frame(port->mac, q, quanta);
    if (!frame) return -1;
    Entry e = {frame, 0, PFC_FRAME_LEN, -1, 0};
    if (ring_push(&port->control, e) < 0) { Py_DECREF(frame); return -1; }
    refresh(self, port);
    return call_pfc_event(self, now, port->number, q, pause, str_tx);
}

static int transmit_obj(Core *self, PyObject *number, PyObject *frame) {
    PyObject *args[2] = {number, frame};
    PyObject *r = PyObject_Vectorcall(self->transmit, args, 2, NULL);
    if (!r) return -1;
    Py_DECREF(r);
    return 0;
}

static int transmit(Core *self, Port *port, PyObject *frame) {
    return transmit_obj(self, port->number_obj, frame);
}

static int64_t get_int_attr(PyObject *obj, PyObject *name, int *ok) {
    PyObject *v = PyObject_GetAttr(obj, name);
    if (!v) { *ok = 0; return 0; }
    int64_t x = PyLong_AsLongLong(v);
    Py_DECREF(v);
    if (x == -1 && PyErr_Occurred()) { *ok = 0; return 0; }
    return x;
}

/* a job from the ingress half (or an egress result) enters a queue; 1 queued, 0 dropped, -1 error */
static int admit(Core *self, PyObject *job, int64_t now) {
    int ok = 1;
    PyObject *ev = PyObject_GetAttr(job, str_egress_port);
    if (!ev) return -1;
    Port *port = NULL;
    if (PyLong_Check(ev)) {
        int64_t number = PyLong_AsLongLong(ev);
        if (number == -1 && PyErr_Occurred()) PyErr_Clear();
        else port = find_port(self, number);
    }
    Py_DECREF(ev);
    if (!port) { self->drops[D_NO_SUCH_PORT]++; return 0; }
    int q = (int)(get_int_attr(job, str_priority, &ok) & 7);
    int64_t length = get_int_attr(job, str_length, &ok);
    if (!ok) return -1;
    if (port->wd_stormed >> q & 1 && self->wd_drop) { port->drops[q][D_PFCWD]++; return 0; }
    int64_t free_bytes = self->shared_bytes - self->shared_used;
    int64_t ingress_number = -1;
    if (self->lossless_mask >> q & 1) {
        PyObject *iv = PyObject_GetAttr(job, str_ingress_port);
        if (!iv) return -1;
        Port *ingress = NULL;
        if (PyLong_Check(iv)) {
            ingress_number = PyLong_AsLongLong(iv);
            if (ingress_number == -1 && PyErr_Occurred()) PyErr_Clear();
            else ingress = find_port(self, ingress_number);
        }
        Py_DECREF(iv);
        Pfc *pfc = ingress ? ingress->pfc : NULL;
        if (!pfc) {   /* from the CPU port or recirculation: nobody to pause, keep it anyway */
            self->shared_used += length;
        } else {
            int64_t xoff = self->has_xoff ? self->xoff_bytes : (int64_t)(self->alpha * (double)free_bytes);
            int64_t cap = pfc->shared[q] + free_bytes, taken;
            if (pfc_charge(pfc, ingress->number, q, length, xoff < cap ? xoff : cap, &taken) < 0) return -1;
            if (taken < 0) {   /* the headroom is full: dropped, a lossless drop */
                if (!pfc->xoff[q] && send_pfc(self, ingress, q, 1, now) < 0) return -1;
                port->drops[q][D_HEADROOM_OVERFLOW]++;
                return 0;
            }
            self->shared_used += taken;
            self->headroom_used += length - taken;
            if (!pfc->xoff[q] && pfc->headroom[q] > 0 && send_pfc(self, ingress, q, 1, now) < 0) return -1;
        }
    } else {
        if (length > free_bytes) { port->drops[q][D_BUFFER_FULL]++; return 0; }
        int over = self->has_queue_limit ? port->qbytes[q] + length > self->queue_limit
                                         : (double)(port->qbytes[q] + length) > self->alpha * (double)free_bytes;
        if (over) { port->drops[q][D_QUEUE_LIMIT]++; return 0; }
        self->shared_used += length;
    }
    if (self->shared_used > self->max_shared_used) self->max_shared_used = self->shared_used;
    Ring *queue = &port->queues[q];
    Py_ssize_t depth = queue->count;
    Py_INCREF(job);
    Entry e = {job, now, length, ingress_number, depth};
    if (ring_push(queue, e) < 0) { Py_DECREF(job); return -1; }
    port->enqueued[q]++;
    port->qbytes[q] += length;
    if (depth >= port->max_qdepth[q]) port->max_qdepth[q] = depth + 1;
    if (port->qbytes[q] > port->max_qbytes[q]) port->max_qbytes[q] = port->qbytes[q];
    if (port->nonempty || port->control.count || port->delay_line.count || (port->pfc && port->pfc->xoff_count)) {
        port->nonempty |= 1u << q;
        refresh(self, port);
    } else {
        /* an idle port is due when the wire is free or this queue's pause ends (as the Python
         * TM's fast path: a pause cut short can leave paused_until above pause_horizon) */
        port->nonempty = 1u << q;
        int64_t due = port->busy_until;
        if (port->pfc && port->pfc->paused_until[q] > due) due = port->pfc->paused_until[q];
        port->due = due;
        port->active = 1;
    }
    return 1;
}

/* buffer accounting of a queued entry leaving (dequeued or flushed) */
static int release(Core *self, Port *port, int q, Entry *e, int64_t now) {
    int64_t length = e->length;
    port->qbytes[q] -= length;
    if (!(self->lossless_mask >> q & 1)) { self->shared_used -= length; return 0; }
    Port *ingress = e->ingress >= 0 ? find_port(self, e->ingress) : NULL;
    Pfc *pfc = ingress ? ingress->pfc : NULL;
    if (!pfc) { self->shared_used -= length; return 0; }
    int64_t freed = pfc_release(pfc, q, length);
    self->shared_used -= freed;
    self->headroom_used -= length - freed;
    if (pfc->xoff[q]) {
        int64_t xon;
        if (self->has_xon) {
            xon = self->xon_bytes;
        } else {
            xon = (int64_t)(self->alpha * (double)(self->shared_bytes - self->shared_used)) - self->xon_offset;
            if (xon < 0) xon = 0;
        }
        if (!pfc->headroom[q] && pfc->shared[q] <= xon) return send_pfc(self, ingress, q, 0, now);
    }
    return 0;
}

static int wire(Core *self, Port *port, PyObject *frame, int64_t now) {
    int64_t start = now > port->busy_until ? now : port->busy_until;
    int64_t length = PyBytes_Check(frame) ? PyBytes_GET_SIZE(frame) : PyObject_Size(frame);
    if (length < 0) return -1;
    /* the time on the wire: bytes + preamble, IFG and FCS, at least a minimum frame's */
    int64_t on_wire = length + 4 >= MIN_WIRE_FRAME ? length + WIRE_OVERHEAD : MIN_WIRE_FRAME + 20;
    port->busy_until = start + ((on_wire * port->ns_per_byte_q16) >> 16);
    port->tx_frames++;
    port->tx_bytes += length;
    if (port->delay_ns) {
        Py_INCREF(frame);
        Entry e = {frame, start + port->delay_ns, length, -1, 0};
        if (ring_push(&port->delay_line, e) < 0) { Py_DECREF(frame); return -1; }
        return 0;
    }
    return transmit(self, port, frame);
}

/* the queue to serve now, or -1 if every non-empty queue is paused */
static int pick(Core *self, Port *port, int64_t now) {
    Pfc *pfc = port->pfc;
    unsigned mask = port->nonempty;
    if (pfc && pfc->pause_horizon > now)
        for (int q = 0; q < NUM_PRIO; q++)
            if (mask >> q & 1 && pfc->paused_until[q] > now) mask &= ~(1u << q);
    if (!mask) return -1;
    if (!self->dwrr) return HIGHEST_SET[mask];
    if (mask & self->strict_mask) return HIGHEST_SET[mask & self->strict_mask];
    /* deficit round robin (Shreedhar & Varghese, SIGCOMM 1995), one packet per call */
    for (;;) {
        int q = port->rr;
        if (mask >> q & 1) {
            if (!port->rr_credited) {
                port->deficit[q] += self->quantum[q];
                port->rr_credited = 1;
            }
            int64_t size = ring_front(&port->queues[q])->length;
            if (size <= port->deficit[q]) {
                port->deficit[q] -= size;
                return q;
            }
        } else if (!(port->nonempty >> q & 1)) {
            port->deficit[q] = 0;    /* an empty queue keeps no credit */
        }
        port->rr = (q + 1) % NUM_PRIO;
        port->rr_credited = 0;
    }
}

static int egress_result(Core *self, Port *port, PyObject *result, int64_t now) {
    PyObject *frames = PyObject_GetAttr(result, str_frames);
    if (!frames) return -1;
    PyObject *it = PyObject_GetIter(frames);
    Py_DECREF(frames);
    if (!it) return -1;
    PyObject *item;
    int rc = 0;
    while (rc == 0 && (item = PyIter_Next(it))) {
        PyObject *out_port, *frame;
        if (!PyArg_ParseTuple(item, "OO", &out_port, &frame)) {
            rc = -1;
        } else {
            int64_t number = PyLong_AsLongLong(out_port);
            if (number == -1 && PyErr_Occurred()) rc = -1;
            else if (number == port->number) rc = wire(self, port, frame, now);
            else rc = transmit_obj(self, out_port, frame);
        }
        Py_DECREF(item);
    }
    Py_DECREF(it);
    if (rc < 0 || PyErr_Occurred()) return -1;
    PyObject *jobs = PyObject_GetAttr(result, str_jobs);
    if (!jobs) return -1;
    it = PyObject_GetIter(jobs);
    Py_DECREF(jobs);
    if (!it) return -1;
    while (rc == 0 && (item = PyIter_Next(it))) {
        if (admit(self, item, now) < 0) rc = -1;
        Py_DECREF(item);
    }
    Py_DECREF(it);
    return rc < 0 || PyErr_Occurred() ? -1 : 0;
}

static int dequeue(Core *self, Port *port, int q, int64_t now) {
    Ring *queue = &port->queues[q];
    Entry e = ring_pop(queue);
    if (!queue->count) port->nonempty &= ~(1u << q);
    port->dequeued[q]++;
    if (release(self, port, q, &e, now) < 0) { Py_DECREF(e.obj); return -1; }
    if (self->pipeline == Py_None) {
        port->drops[q][D_NO_PIPELINE]++;
        Py_DECREF(e.obj);
        return 0;
    }
    PyObject *args[7];
    args[0] = self->pipeline;
    args[1] = e.obj;
    args[2] = PyLong_FromLongLong(floordiv(now, 1000));
    args[3] = PyLong_FromLongLong(floordiv(e.t, 1000));
    args[4] = PyLong_FromSsize_t(e.depth);
    args[5] = PyLong_FromLongLong(floordiv(now - e.t, 1000));
    args[6] = PyLong_FromSsize_t(queue->count);
    PyObject *result = NULL;
    if (args[2] && args[3] && args[4] && args[5] && args[6])
        result = PyObject_VectorcallMethod(str_egress_frame, args, 7 | PY_VECTORCALL_ARGUMENTS_OFFSET, NULL);
    for (int i = 2; i < 7; i++) Py_XDECREF(args[i]);
    Py_DECREF(e.obj);
    if (!result) {   /* a program bug must cost one packet, not the switch */
        PyObject *type, *value, *tb;
        PyErr_Fetch(&type, &value, &tb);
        PyErr_NormalizeException(&type, &value, &tb);
        if (tb && value) PyException_SetTraceback(value, tb);
        port->drops[q][D_PIPELINE_ERROR]++;
        int rc = 0;
        if (port->drops[q][D_PIPELINE_ERROR] == 1 && value) {   /* one line, no traceback */
            PyObject *fmt = PyUnicode_FromString("packet for port %d dropped in egress: %s: %s (logged once)");
            PyObject *pn = PyLong_FromLongLong(port->number);
            PyObject *tn = PyUnicode_FromString(Py_TYPE(value)->tp_name);
            PyObject *vs = PyObject_Str(value);
            PyObject *argt = (fmt && pn && tn && vs) ? PyTuple_Pack(4, fmt, pn, tn, vs) : NULL;
            PyObject *meth = argt ? PyObject_GetAttrString(tm_log, "error") : NULL;
            PyObject *r = meth ? PyObject_Call(meth, argt, NULL) : NULL;
            if (!r) rc = -1;
            Py_XDECREF(r); Py_XDECREF(meth); Py_XDECREF(argt); Py_XDECREF(vs); Py_XDECREF(tn); Py_XDECREF(pn); Py_XDECREF(fmt);
        }
        Py_XDECREF(type); Py_XDECREF(value); Py_XDECREF(tb);
        return rc;
    }
    int rc = 0;
    if (Py_IS_TYPE(result, &PyBytes_Type))      /* the common case: one frame for this port */
        rc = wire(self, port, result, now);
    else if (result != Py_None)
        rc = egress_result(self, port, result, now);
    Py_DECREF(result);
    return rc;
}

/* whatever is due on port at now; then port->due is brought up to date */
static int step(Core *self, Port *port, int64_t now) {
    Ring *line = &port->delay_line;
    while (line->count && ring_front(line)->t <= now) {
        Entry e = ring_pop(line);
        int rc = transmit(self, port, e.obj);
        Py_DECREF(e.obj);
        if (rc < 0) return -1;
    }
    Pfc *pfc = port->pfc;
    if (pfc && pfc->xoff_count)
        for (int q = 0; q < NUM_PRIO; q++)
            if (pfc->xoff[q] && pfc->refresh_at[q] <= now && send_pfc(self, port, q, 1, now) < 0) return -1;
    if (now >= port->busy_until) {
        if (port->control.count) {
            port->control_tx++;
            Entry e = ring_pop(&port->control);
            int rc = wire(self, port, e.obj, now);
            Py_DECREF(e.obj);
            if (rc < 0) return -1;
        } else if (port->nonempty) {
            int q = self->dwrr || (pfc && pfc->pause_horizon > now) ? pick(self, port, now)
                                                                     : HIGHEST_SET[port->nonempty];
            if (q >= 0 && dequeue(self, port, q, now) < 0) return -1;
        }
    }
    refresh(self, port);
    return 0;
}

static int wd_log(const char *level, PyObject *args) {
    if (!args) return -1;
    PyObject *meth = PyObject_GetAttrString(tm_log, level);
    PyObject *r = meth ? PyObject_Call(meth, args, NULL) : NULL;
    Py_XDECREF(meth);
    Py_DECREF(args);
    if (!r) return -1;
    Py_DECREF(r);
    return 0;
}

static int wd_storm(Core *self, Port *port, int q, int64_t now) {
    port->wd_stormed |= 1u << q;
    port->wd_storms[q]++;
    port->wd_left[q] = self->wd_restoration;
    pfc_pause(port->pfc, q, 0, now);     /* the pause in force ends now; later ones are ignored */
    port->pfc->wd_ignore |= 1u << q;
    /* the pause in force no longer holds the queue */
    if (call_pfc_event(self, now, port->number, q, 0, str_wd) < 0) return -1;
    long long flushed = 0;
    if (self->wd_drop) {
        while (port->queues[q].count) {
            Entry e = ring_pop(&port->queues[q]);
            int rc = release(self, port, q, &e, now);
            Py_DECREF(e.obj);
            if (rc < 0) return -1;
            port->drops[q][D_PFCWD]++;
            flushed++;
        }
        port->nonempty &= ~(1u << q);
    }
    int rc = wd_log("warning", Py_BuildValue(
        "(sLidsL)", "pfcwd: port %d priority %d: PFC storm detected (paused, no dequeue for %g ms); action %s, "
        "%d packets flushed", (long long)port->number, q, (double)self->wd_detection / 1e6,
        self->wd_drop ? "drop" : "forward", flushed));
    refresh(self, port);
    return rc;
}

static int wd_restore(Core *self, Port *port, int q) {
    port->wd_stormed &= ~(1u << q);
    port->wd_restores[q]++;
    port->wd_left[q] = self->wd_detection;
    port->pfc->wd_ignore &= ~(1u << q);
    return wd_log("info", Py_BuildValue(
        "(sLidL)", "pfcwd: port %d priority %d: restored (no pause frame for %g ms); %d packets dropped so far",
        (long long)port->number, q, (double)self->wd_restoration / 1e6,
        (long long)port->drops[q][D_PFCWD]));
}

/* one look of the PFC watchdog at every watched queue (SONiC's detection and restoration) */
static int wd_look(Core *self, int64_t now) {
    int64_t poll = self->wd_poll;
    int busy = 0;                          /* something to look at next time */
    for (Py_ssize_t i = 0; i < self->nports; i++) {
        Port *port = self->ports[i];
        unsigned watch = port->wd_watch;
        if (!watch) continue;
        Pfc *pfc = port->pfc;
        unsigned seen = pfc->pause_seen;
        pfc->pause_seen = 0;
        for (int q = 0; q < NUM_PRIO; q++) {
            if (!(watch >> q & 1)) continue;
            if (port->wd_stormed >> q & 1) {
                port->wd_left[q] = seen >> q & 1 ? self->wd_restoration : port->wd_left[q] - poll;
                if (port->wd_left[q] <= 0 && wd_restore(self, port, q) < 0) return -1;
                busy = 1;
                continue;
            }
            int paused = pfc->paused_until[q] > now;
            int stalled = paused && port->nonempty >> q & 1 && port->dequeued[q] == port->wd_deq[q];
            port->wd_deq[q] = port->dequeued[q];
            if (stalled) {
                port->wd_left[q] -= poll;
                if (port->wd_left[q] <= 0 && wd_storm(self, port, q, now) < 0) return -1;
            } else {
                port->wd_left[q] = self->wd_detection;
            }
            busy |= paused;
        }
    }
    self->wd_next = busy ? self->wd_next + poll : NEVER;
    return 0;
}

static int advance(Core *self, int64_t now_ns) {
    for (;;) {
        Port *best = NULL;
        int64_t best_due = now_ns + 1;
        for (Py_ssize_t i = 0; i < self->nports; i++) {
            Port *p = self->ports[i];
            /* ties: the lowest port number first, as the Python TM */
            if (p->active && (p->due < best_due || (best && p->due == best_due && p->number < best->number))) {
                best = p; best_due = p->due;
            }
        }
        if (self->wd_next <= now_ns && (!best || self->wd_next <= best_due)) {
            /* the watchdog looks before ports due at the same time */
            if (self->wd_next > self->now) self->now = self->wd_next;
            if (wd_look(self, self->now) < 0) return -1;
            continue;
        }
        if (!best) break;
        if (best_due > self->now) self->now = best_due;
        if (step(self, best, self->now) < 0) return -1;
    }
    if (now_ns > self->now) self->now = now_ns;
    return 0;
}

/* ---- the type ---- */

static void port_free(Port *port) {
    for (int q = 0; q < NUM_PRIO; q++) ring_clear(&port->queues[q]);
    ring_clear(&port->control);
    ring_clear(&port->delay_line);
    Py_XDECREF(port->rate_obj);
    Py_XDECREF(port->number_obj);
    PyMem_Free(port->pfc);
    PyMem_Free(port);
}

static int add_port(Core *self, int64_t number, PyObject *rate_obj, int64_t delay_ns, int with_pfc,
                    int64_t pause_quanta, int64_t headroom, const unsigned char *mac) {
    int64_t rate = rate_obj == Py_None ? 0 : PyLong_AsLongLong(rate_obj);
    if (rate == -1 && PyErr_Occurred()) return -1;
    Port *port = PyMem_Calloc(1, sizeof(Port));
    if (!port) { PyErr_NoMemory(); return -1; }
    port->number = number;
    port->number_obj = PyLong_FromLongLong(number);
    if (!port->number_obj) { PyMem_Free(port); return -1; }
    Py_INCREF(rate_obj);
    port->rate_obj = rate_obj;
    port->delay_ns = delay_ns;
    /* ns per wire byte, scaled by 2**16 to keep integer arithmetic exact enough */
    port->ns_per_byte_q16 = rate ? floordiv(8000000000LL << 16, rate) : 0;
    memcpy(port->mac, mac, 6);
    port->due = NEVER;
    if (with_pfc) {
        Pfc *p = PyMem_Calloc(1, sizeof(Pfc));
        if (!p) { port_free(port); PyErr_NoMemory(); return -1; }
        p->rate_bps = rate;
        p->pause_quanta = pause_quanta;
        p->pause_ns = quanta_to_ns(pause_quanta, rate);
        p->headroom_limit = headroom;
        for (int q = 0; q < NUM_PRIO; q++) p->refresh_at[q] = NEVER;
        port->pfc = p;
    }
    Port *old = find_port(self, number);
    if (old) {   /* a dict assignment: the new port takes the old one's place */
        for (Py_ssize_t i = 0; i < self->nports; i++) if (self->ports[i] == old) self->ports[i] = port;
        port_free(old);
    } else {
        Port **ports = PyMem_Realloc(self->ports, (self->nports + 1) * sizeof(Port *));
        if (!ports) { port_free(port); PyErr_NoMemory(); return -1; }
        self->ports = ports;
        self->ports[self->nports++] = port;
    }
    if (number >= 0 && number < DIRECT_PORTS) self->direct[number] = port;
    return 0;
}

static void default_mac(int64_t number, unsigned char *mac) {
    /* a locally administered source MAC for PFC frames of a port whose MAC we were not told */
    unsigned char m[6] = {0x02, 0x66, 0x6C, 0, (unsigned char)(number >> 8), (unsigned char)number};
    memcpy(mac, m, 6);
}

static int parse_optional_int(PyObject *v, int *has, int64_t *out, const char *name) {
    if (v == Py_None) { *has = 0; *out = 0; return 0; }
    if (!PyLong_Check(v)) { PyErr_Format(PyExc_TypeError, "%s must be an int or None", name); return -1; }
    int64_t x = PyLong_AsLongLong(v);
    if (x == -1 && PyErr_Occurred()) return -1;
    *has = 1; *out = x;
    return 0;
}

/* Core(resolved, transmit, pipeline, now_ns, lossless, alpha, queue_limit, dwrr, quanta, shared_bytes,
 *      xoff_bytes, xon_bytes, xon_offset, pause_quanta,
 *      ports=[(number, rate_bps, delay_ns, headroom, mac, watched)],
 *      watchdog=None | (drop, detection_ns, restoration_ns, poll_ns)) */
static int Core_init(Core *self, PyObject *args, PyObject *kw) {
    PyObject *resolved, *transmit_fn, *pipeline, *lossless, *queue_limit, *quanta, *xoff, *xon, *ports, *watchdog;
    long long now, shared_bytes, xon_offset, pause_quanta;
    double alpha;
    int dwrr;
    if (!PyArg_ParseTuple(args, "OOOLOdOpOLOOLLOO", &resolved, &transmit_fn, &pipeline, &now, &lossless, &alpha,
                          &queue_limit, &dwrr, &quanta, &shared_bytes, &xoff, &xon, &xon_offset,
                          &pause_quanta, &ports, &watchdog))
        return -1;
    self->wd_next = NEVER;
    if (watchdog != Py_None) {
        long long detection, restoration, poll;
        if (!PyArg_ParseTuple(watchdog, "pLLL", &self->wd_drop, &detection, &restoration, &poll)) return -1;
        self->wd_detection = detection;
        self->wd_restoration = restoration;
        self->wd_poll = poll;
    }
    if (self->initialised) { PyErr_SetString(PyExc_RuntimeError, "already initialised"); return -1; }
    self->initialised = 1;
    Py_INCREF(resolved); Py_SETREF(self->resolved, resolved);
    Py_INCREF(transmit_fn); Py_SETREF(self->transmit, transmit_fn);
    Py_INCREF(pipeline); Py_SETREF(self->pipeline, pipeline);
    Py_INCREF(lossless); Py_SETREF(self->lossless, lossless);
    self->now = now;
    self->alpha = alpha;
    self->dwrr = dwrr;
    self->shared_bytes = shared_bytes;
    self->xon_offset = xon_offset;
    if (parse_optional_int(queue_limit, &self->has_queue_limit, &self->queue_limit, "queue_limit") < 0 ||
        parse_optional_int(xoff, &self->has_xoff, &self->xoff_bytes, "xoff_bytes") < 0 ||
        parse_optional_int(xon, &self->has_xon, &self->xon_bytes, "xon_bytes") < 0)
        return -1;
    PyObject *it = PyObject_GetIter(lossless), *item;
    if (!it) return -1;
    while ((item = PyIter_Next(it))) {
        long q = PyLong_AsLong(item);
        Py_DECREF(item);
        if (q == -1 && PyErr_Occurred()) { Py_DECREF(it); return -1; }
        self->lossless_mask |= 1u << (q & 7);
    }
    Py_DECREF(it);
    if (PyErr_Occurred()) return -1;
    if (!PyTuple_Check(quanta) || PyTuple_GET_SIZE(quanta) != NUM_PRIO) {
        PyErr_SetString(PyExc_TypeError, "quanta must be a tuple of 8 ints");
        return -1;
    }
    for (int q = 0; q < NUM_PRIO; q++) {
        self->quantum[q] = PyLong_AsLongLong(PyTuple_GET_ITEM(quanta, q));
        if (PyErr_Occurred()) return -1;
        if (dwrr && !self->quantum[q]) self->strict_mask |= 1u << q;
    }
    it = PyObject_GetIter(ports);
    if (!it) return -1;
    while ((item = PyIter_Next(it))) {
        long long number, delay, headroom;
        PyObject *rate;
        const char *mac;
        Py_ssize_t mac_len;
        int watched;
        int rc = PyArg_ParseTuple(item, "LOLLy#p", &number, &rate, &delay, &headroom, &mac, &mac_len, &watched);
        if (rc && mac_len != 6) { PyErr_SetString(PyExc_ValueError, "a MAC is 6 bytes"); rc = 0; }
        if (rc && rate == Py_None) { PyErr_SetString(PyExc_ValueError, "a PFC port needs a rate"); rc = 0; }
        if (rc) rc = add_port(self, number, rate, delay, 1, pause_quanta, headroom, (const unsigned char *)mac) == 0;
        if (rc && watched) {
            Port *port = find_port(self, number);
            port->wd_watch = self->lossless_mask;
            for (int q = 0; q < NUM_PRIO; q++) port->wd_left[q] = self->wd_detection;
        }
        Py_DECREF(item);
        if (!rc) { Py_DECREF(it); return -1; }
    }
    Py_DECREF(it);
    return PyErr_Occurred() ? -1 : 0;
}

static PyObject *Core_new(PyTypeObject *type, PyObject *args, PyObject *kw) {
    Core *self = (Core *)type->tp_alloc(type, 0);
    if (!self) return NULL;
    PyObject **refs[] = {&self->resolved, &self->transmit, &self->pipeline, &self->pfc_event, &self->lossless};
    for (int k = 0; k < 5; k++) { Py_INCREF(Py_None); *refs[k] = Py_None; }
    return (PyObject *)self;
}

static int Core_traverse(Core *self, visitproc visit, void *arg) {
    Py_VISIT(self->resolved); Py_VISIT(self->transmit); Py_VISIT(self->pipeline);
    Py_VISIT(self->pfc_event); Py_VISIT(self->lossless);
    for (Py_ssize_t i = 0; i < self->nports; i++) {
        Port *port = self->ports[i];
        Ring *rings[NUM_PRIO + 2] = {&port->control, &port->delay_line};
        for (int q = 0; q < NUM_PRIO; q++) rings[q + 2] = &port->queues[q];
        for (int k = 0; k < NUM_PRIO + 2; k++)
            for (Py_ssize_t j = 0; j < rings[k]->count; j++) Py_VISIT(rings[k]->buf[(rings[k]->head + j) % rings[k]->cap].obj);
    }
    return 0;
}

/* breaks reference cycles (a switch holds its TM, whose transmit is the switch's method) */
static int Core_clear(Core *self) {
    for (Py_ssize_t i = 0; i < self->nports; i++) {
        Port *port = self->ports[i];
        for (int q = 0; q < NUM_PRIO; q++) ring_clear(&port->queues[q]);
        port->nonempty = 0;
        ring_clear(&port->control);
        ring_clear(&port->delay_line);
        refresh(self, port);
    }
    PyObject **refs[] = {&self->transmit, &self->pipeline, &self->pfc_event};
    for (int k = 0; k < 3; k++) if (*refs[k]) { Py_INCREF(Py_None); Py_SETREF(*refs[k], Py_None); }
    return 0;
}

static void Core_dealloc(Core *self) {
    PyObject_GC_UnTrack(self);
    for (Py_ssize_t i = 0; i < self->nports; i++) port_free(self->ports[i]);
    PyMem_Free(self->ports);
    Py_XDECREF(self->resolved); Py_XDECREF(self->transmit); Py_XDECREF(self->pipeline);
    Py_XDECREF(self->pfc_event); Py_XDECREF(self->lossless);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static int64_t arg_ns(PyObject *v, int *ok) {
    int64_t x = PyLong_AsLongLong(v);
    if (x == -1 && PyErr_Occurred()) *ok = 0;
    return x;
}

static PyObject *Core_enqueue(Core *self, PyObject *const *args, Py_ssize_t n) {
    if (n != 2) { PyErr_SetString(PyExc_TypeError, "enqueue(job, now_ns)"); return NULL; }
    int ok = 1;
    int64_t now = arg_ns(args[1], &ok);
    if (!ok) return NULL;
    if (now > self->now && advance(self, now) < 0) return NULL;
    int r = admit(self, args[0], self->now);
    if (r < 0) return NULL;
    return PyBool_FromLong(r);
}

static PyObject *Core_advance(Core *self, PyObject *arg) {
    int ok = 1;
    int64_t now = arg_ns(arg, &ok);
    if (!ok || advance(self, now) < 0) return NULL;
    Py_RETURN_NONE;
}

static PyObject *Core_next_event_time(Core *self, PyObject *unused) {
    int64_t earliest = self->wd_next;
    for (Py_ssize_t i = 0; i < self->nports; i++) {
        Port *p = self->ports[i];
        if (p->active && p->due < earliest) earliest = p->due;
    }
    if (earliest == NEVER) Py_RETURN_NONE;
    return PyLong_FromLongLong(earliest > self->now ? earliest : self->now);
}

static PyObject *Core_receive_control(Core *self, PyObject *const *args, Py_ssize_t n) {
    if (n != 3) { PyErr_SetString(PyExc_TypeError, "receive_control(port, frame, now_ns)"); return NULL; }
    int ok = 1;
    int64_t number = arg_ns(args[0], &ok), now = arg_ns(args[2], &ok);
    if (!ok) return NULL;
    Py_buffer view;
    if (PyObject_GetBuffer(args[1], &view, PyBUF_SIMPLE) < 0) return NULL;
    const unsigned char *b = view.buf;
    Py_ssize_t len = view.len;
    if (len < 14 || b[12] != 0x88 || b[13] != 0x08) { PyBuffer_Release(&view); Py_RETURN_FALSE; }
    /* parse as pfc.parse_mac_control: PFC (vector & 0xFF, eight timers) or PAUSE (one timer, all) */
    int known = 0, is_pfc = 0;
    unsigned class_enable = 0;
    int64_t quanta[NUM_PRIO] = {0};
    if (len >= 18) {
        unsigned opcode = b[14] << 8 | b[15];
        if (opcode == 0x0101 && len >= 34) {
            known = is_pfc = 1;
            class_enable = b[17];
            for (int q = 0; q < NUM_PRIO; q++) quanta[q] = b[18 + 2 * q] << 8 | b[19 + 2 * q];
        } else if (opcode == 0x0001) {
            known = 1;
            class_enable = 0xFF;
            for (int q = 0; q < NUM_PRIO; q++) quanta[q] = b[16] << 8 | b[17];
        }
    }
    PyBuffer_Release(&view);
    if (now > self->now && advance(self, now) < 0) return NULL;
    Port *port = find_port(self, number);
    if (!port || !port->pfc || !known) {
        self->drops[D_MAC_CONTROL_IGNORED]++;
        Py_RETURN_TRUE;
    }
    Pfc *pfc = port->pfc;
    if (is_pfc) {
        for (int q = 0; q < NUM_PRIO; q++)
            if (class_enable >> q & 1) { pfc->pfc_rx[q]++; pfc_obey(pfc, q, quanta[q], self->now); }
    } else {
        pfc->pause_rx++;
        for (int q = 0; q < NUM_PRIO; q++) pfc_obey(pfc, q, quanta[0], self->now);
    }
    if (port->wd_watch & pfc->pause_seen && self->wd_next == NEVER) self->wd_next = self->now + self->wd_poll;
    refresh(self, port);
    for (int q = 0; q < NUM_PRIO; q++)   /* obeyed ones */
        if (class_enable >> q & 1 && !(pfc->wd_ignore >> q & 1) &&
            call_pfc_event(self, self->now, number, q, quanta[q] > 0, str_rx) < 0)
            return NULL;
    Py_RETURN_TRUE;
}

static PyObject *Core_set_pipeline(Core *self, PyObject *pipeline) {
    /* queued jobs belong to the old program and are dropped */
    for (Py_ssize_t i = 0; i < self->nports; i++) {
        Port *port = self->ports[i];
        for (int q = 0; q < NUM_PRIO; q++) {
            while (port->queues[q].count) {
                Entry e = ring_pop(&port->queues[q]);
                int rc = release(self, port, q, &e, self->now);
                Py_DECREF(e.obj);
                if (rc < 0) return NULL;
                port->drops[q][D_PIPELINE_SWAP]++;
            }
        }
        port->nonempty = 0;
        refresh(self, port);
    }
    Py_INCREF(pipeline);
    Py_SETREF(self->pipeline, pipeline);
    Py_RETURN_NONE;
}

static PyObject *Core_add_unshaped_port(Core *self, PyObject *arg) {
    int ok = 1;
    int64_t number = arg_ns(arg, &ok);
    if (!ok) return NULL;
    unsigned char mac[6];
    default_mac(number, mac);
    if (add_port(self, number, Py_None, 0, 0, 0, 0, mac) < 0) return NULL;
    Py_RETURN_NONE;
}

static PyObject *Core_queue_depth(Core *self, PyObject *const *args, Py_ssize_t n) {
    if (n != 2) { PyErr_SetString(PyExc_TypeError, "queue_depth(port, priority)"); return NULL; }
    int ok = 1;
    int64_t number = arg_ns(args[0], &ok), q = arg_ns(args[1], &ok);
    if (!ok) return NULL;
    Port *port = find_port(self, number);
    if (!port) { PyErr_SetObject(PyExc_KeyError, args[0]); return NULL; }
    if (q < -NUM_PRIO || q >= NUM_PRIO) { PyErr_SetString(PyExc_IndexError, "list index out of range"); return NULL; }
    return PyLong_FromSsize_t(port->queues[(q + NUM_PRIO) % NUM_PRIO].count);
}

static int set_item(PyObject *d, const char *key, PyObject *value) {
    if (!value) return -1;
    int rc = PyDict_SetItemString(d, key, value);
    Py_DECREF(value);
    return rc;
}

static PyObject *drops_dict(const int64_t *counts, const char **names, int n) {
    PyObject *d = PyDict_New();
    if (!d) return NULL;
    for (int i = 0; i < n; i++)
        if (counts[i] && set_item(d, names[i], PyLong_FromLongLong(counts[i])) < 0) { Py_DECREF(d); return NULL; }
    return d;
}

#define SET_INT(d, k, v) if (set_item(d, k, PyLong_FromLongLong(v)) < 0) goto fail
#define SET_OBJ(d, k, v) if (set_item(d, k, v) < 0) goto fail

static PyObject *port_stats(Port *port, int64_t now) {
    PyObject *entry = NULL, *priorities = PyDict_New(), *d = PyDict_New();
    if (!priorities || !d) goto fail;
    Pfc *pfc = port->pfc;
    for (int q = 0; q < NUM_PRIO; q++) {
        entry = PyDict_New();
        if (!entry) goto fail;
        SET_INT(entry, "enqueued", port->enqueued[q]);
        SET_INT(entry, "dequeued", port->dequeued[q]);
        SET_INT(entry, "qdepth", port->queues[q].count);
        SET_INT(entry, "qbytes", port->qbytes[q]);
        SET_INT(entry, "max_qdepth", port->max_qdepth[q]);
        SET_INT(entry, "max_qbytes", port->max_qbytes[q]);
        SET_OBJ(entry, "drops", drops_dict(port->drops[q], PORT_REASONS, D_PORT_REASONS));
        if (pfc) {
            SET_INT(entry, "pfc_tx", pfc->pfc_tx[q]);
            SET_INT(entry, "pfc_rx", pfc->pfc_rx[q]);
            SET_INT(entry, "xoff_events", pfc->xoff_events[q]);
            SET_INT(entry, "paused_ns", pfc_paused_ns(pfc, q, now));
            SET_OBJ(entry, "paused", PyBool_FromLong(pfc->paused_until[q] > now));
            SET_OBJ(entry, "pausing_peer", PyBool_FromLong(pfc->xoff[q]));
            SET_INT(entry, "ingress_shared_bytes", pfc->shared[q]);
            SET_INT(entry, "ingress_headroom_bytes", pfc->headroom[q]);
            SET_INT(entry, "max_headroom_bytes", pfc->max_headroom[q]);
            SET_INT(entry, "max_ingress_bytes", pfc->max_ingress_bytes[q]);
            SET_INT(entry, "headroom_overflow", pfc->headroom_overflow[q]);
            SET_OBJ(entry, "pfcwd", PyUnicode_FromString(port->wd_stormed >> q & 1 ? "stormed"
                                                         : port->wd_watch >> q & 1 ? "operational" : "off"));
            SET_INT(entry, "pfcwd_storms", port->wd_storms[q]);
            SET_INT(entry, "pfcwd_restorations", port->wd_restores[q]);
        }
        PyObject *key = PyLong_FromLong(q);
        int rc = key ? PyDict_SetItem(priorities, key, entry) : -1;
        Py_XDECREF(key);
        Py_CLEAR(entry);
        if (rc < 0) goto fail;
    }
    Py_INCREF(port->rate_obj);
    SET_OBJ(d, "rate_bps", port->rate_obj);
    SET_INT(d, "delay_ns", port->delay_ns);
    SET_INT(d, "tx_frames", port->tx_frames);
    SET_INT(d, "tx_bytes", port->tx_bytes);
    SET_INT(d, "control_tx", port->control_tx);
    SET_INT(d, "pause_rx", pfc ? pfc->pause_rx : 0);
    SET_OBJ(d, "priorities", priorities);
    return d;
fail:
    Py_XDECREF(entry); Py_XDECREF(priorities); Py_XDECREF(d);
    return NULL;
}

static int by_number(const void *a, const void *b) {
    int64_t x = (*(Port *const *)a)->number, y = (*(Port *const *)b)->number;
    return (x > y) - (x < y);
}

static PyObject *Core_stats(Core *self, PyObject *unused) {
    int64_t now = self->now;
    PyObject *ports = PyDict_New(), *buffer = PyDict_New(), *out = PyDict_New();
    Port **sorted = PyMem_Malloc((self->nports + 1) * sizeof(Port *));
    if (!ports || !buffer || !out || !sorted) goto fail;
    memcpy(sorted, self->ports, self->nports * sizeof(Port *));
    qsort(sorted, self->nports, sizeof(Port *), by_number);
    for (Py_ssize_t i = 0; i < self->nports; i++) {
        PyObject *entry = port_stats(sorted[i], now), *key = PyLong_FromLongLong(sorted[i]->number);
        int rc = entry && key ? PyDict_SetItem(ports, key, entry) : -1;
        Py_XDECREF(entry); Py_XDECREF(key);
        if (rc < 0) goto fail;
    }
    SET_INT(buffer, "shared_bytes", self->shared_bytes);
    SET_INT(buffer, "shared_used", self->shared_used);
    SET_INT(buffer, "max_shared_used", self->max_shared_used);
    SET_INT(buffer, "headroom_used", self->headroom_used);
    SET_INT(out, "now_ns", now);
    SET_OBJ(out, "buffer", buffer);
    buffer = NULL;
    SET_OBJ(out, "drops", drops_dict(self->drops, TM_REASONS, D_TM_REASONS));
    SET_OBJ(out, "config", PyObject_CallMethodNoArgs(self->resolved, str_as_dict));
    SET_OBJ(out, "ports", ports);
    PyMem_Free(sorted);
    return out;
fail:
    PyMem_Free(sorted);
    Py_XDECREF(ports); Py_XDECREF(buffer); Py_XDECREF(out);
    return NULL;
}

static PyMethodDef Core_methods[] = {
    {"enqueue", (PyCFunction)(void (*)(void))Core_enqueue, METH_FASTCALL,
     "Queue one EgressJob from the ingress half; False if it was dropped."},
    {"advance", (PyCFunction)Core_advance, METH_O, "Run everything due by now_ns."},
    {"next_event_time", (PyCFunction)Core_next_event_time, METH_NOARGS,
     "When advance next has work to do (ns), or None if idle."},
    {"receive_control", (PyCFunction)(void (*)(void))Core_receive_control, METH_FASTCALL,
     "Consume a MAC Control frame received on a port; False if the frame is not one."},
    {"set_pipeline", (PyCFunction)Core_set_pipeline, METH_O,
     "Swap the pipeline; queued jobs belong to the old program and are dropped."},
    {"add_unshaped_port", (PyCFunction)Core_add_unshaped_port, METH_O,
     "A port without line rate or PFC (the CPU port)."},
    {"queue_depth", (PyCFunction)(void (*)(void))Core_queue_depth, METH_FASTCALL, "Packets queued."},
    {"stats", (PyCFunction)Core_stats, METH_NOARGS, "Counters, buffer use and the resolved config."},
    {NULL}
};

/* ---- attributes ---- */

static PyObject *get_now(Core *self, void *c) { return PyLong_FromLongLong(self->now); }
static PyObject *get_alpha(Core *self, void *c) { return PyFloat_FromDouble(self->alpha); }
static int set_alpha(Core *self, PyObject *v, void *c) {
    double a = v ? PyFloat_AsDouble(v) : -1;
    if (!v) { PyErr_SetString(PyExc_AttributeError, "cannot delete alpha"); return -1; }
    if (a == -1 && PyErr_Occurred()) return -1;
    self->alpha = a;
    return 0;
}

static PyObject *optional_int(int has, int64_t v) {
    if (!has) Py_RETURN_NONE;
    return PyLong_FromLongLong(v);
}

#define OPTIONAL_INT_ATTR(name, has)                                                         \
    static PyObject *get_##name(Core *self, void *c) { return optional_int(self->has, self->name); } \
    static int set_##name(Core *self, PyObject *v, void *c) {                               \
        if (!v) { PyErr_SetString(PyExc_AttributeError, "cannot delete " #name); return -1; } \
        return parse_optional_int(v, &self->has, &self->name, #name);                        \
    }
OPTIONAL_INT_ATTR(queue_limit, has_queue_limit)
OPTIONAL_INT_ATTR(xoff_bytes, has_xoff)
OPTIONAL_INT_ATTR(xon_bytes, has_xon)

static PyObject *get_shared_bytes(Core *self, void *c) { return PyLong_FromLongLong(self->shared_bytes); }
static int set_shared_bytes(Core *self, PyObject *v, void *c) {
    int has;
    if (!v) { PyErr_SetString(PyExc_AttributeError, "cannot delete shared_bytes"); return -1; }
    if (v == Py_None) { PyErr_SetString(PyExc_TypeError, "shared_bytes must be an int"); return -1; }
    return parse_optional_int(v, &has, &self->shared_bytes, "shared_bytes");
}
static PyObject *get_shared_used(Core *self, void *c) { return PyLong_FromLongLong(self->shared_used); }
static PyObject *get_headroom_used(Core *self, void *c) { return PyLong_FromLongLong(self->headroom_used); }
static PyObject *get_max_shared_used(Core *self, void *c) { return PyLong_FromLongLong(self->max_shared_used); }
static PyObject *get_xon_offset(Core *self, void *c) { return PyLong_FromLongLong(self->xon_offset); }
static PyObject *get_pipeline(Core *self, void *c) { Py_INCREF(self->pipeline); return self->pipeline; }

#define OBJECT_ATTR(name)                                                                   \
    static PyObject *get_##name(Core *self, void *c) { Py_INCREF(self->name); return self->name; } \
    static int set_##name(Core *self, PyObject *v, void *c) {                              \
        if (!v) { PyErr_SetString(PyExc_AttributeError, "cannot delete " #name); return -1; } \
        Py_INCREF(v); Py_SETREF(self->name, v); return 0;                                   \
    }
OBJECT_ATTR(transmit)
OBJECT_ATTR(pfc_event)
static PyObject *get_lossless(Core *self, void *c) { Py_INCREF(self->lossless); return self->lossless; }
static PyObject *get_resolved(Core *self, void *c) { Py_INCREF(self->resolved); return self->resolved; }

static PyGetSetDef Core_getset[] = {
    {"now", (getter)get_now, NULL, "the TM's clock (ns)"},
    {"alpha", (getter)get_alpha, (setter)set_alpha, "dynamic threshold factor"},
    {"queue_limit", (getter)get_queue_limit, (setter)set_queue_limit, "static per-queue limit (bytes) or None"},
    {"xoff_bytes", (getter)get_xoff_bytes, (setter)set_xoff_bytes, "static XOFF threshold or None"},
    {"xon_bytes", (getter)get_xon_bytes, (setter)set_xon_bytes, "static XON threshold or None"},
    {"shared_bytes", (getter)get_shared_bytes, (setter)set_shared_bytes, "shared buffer size"},
    {"shared_used", (getter)get_shared_used, NULL, NULL},
    {"headroom_used", (getter)get_headroom_used, NULL, NULL},
    {"max_shared_used", (getter)get_max_shared_used, NULL, NULL},
    {"xon_offset", (getter)get_xon_offset, NULL, NULL},
    {"pipeline", (getter)get_pipeline, NULL, "the running pipeline (set_pipeline swaps it)"},
    {"transmit", (getter)get_transmit, (setter)set_transmit, "called as transmit(port, frame)"},
    {"pfc_event", (getter)get_pfc_event, (setter)set_pfc_event,
     "called as (now_ns, port, priority, pause, 'rx'|'tx') for every PFC decision"},
    {"lossless", (getter)get_lossless, NULL, NULL},
    {"resolved", (getter)get_resolved, NULL, NULL},
    {NULL}
};

static PyTypeObject CoreType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "native_tm.Core",
    .tp_basicsize = sizeof(Core),
    .tp_dealloc = (destructor)Core_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,
    .tp_traverse = (traverseproc)Core_traverse,
    .tp_clear = (inquiry)Core_clear,
    .tp_free = PyObject_GC_Del,
    .tp_doc = "The traffic manager (see traffic_manager.NativeTrafficManager).",
    .tp_methods = Core_methods,
    .tp_getset = Core_getset,
    .tp_init = (initproc)Core_init,
    .tp_new = Core_new,
};

static struct PyModuleDef module_def = {PyModuleDef_HEAD_INIT, "@FL_MODULE@", NULL, -1, NULL};

PyMODINIT_FUNC PyInit_@FL_MODULE@(void) {
    PyObject *logging = PyImport_ImportModule("logging");
    if (!logging) return NULL;
    tm_log = PyObject_CallMethod(logging, "getLogger", "s", "fabriclab.switch.traffic_manager");
    pfc_log = PyObject_CallMethod(logging, "getLogger", "s", "fabriclab.switch.pfc");
    Py_DECREF(logging);
    if (!tm_log || !pfc_log) return NULL;
#define INTERN(var, s) if (!(var = PyUnicode_InternFromString(s))) return NULL
    INTERN(str_egress_port, "egress_port");
    INTERN(str_priority, "priority");
    INTERN(str_length, "length");
    INTERN(str_ingress_port, "ingress_port");
    INTERN(str_egress_frame, "egress_frame");
    INTERN(str_frames, "frames");
    INTERN(str_jobs, "jobs");
    INTERN(str_tx, "tx");
    INTERN(str_rx, "rx");
    INTERN(str_wd, "wd");
    INTERN(str_as_dict, "as_dict");
    if (PyType_Ready(&CoreType) < 0) return NULL;
    PyObject *m = PyModule_Create(&module_def);
    if (!m) return NULL;
    Py_INCREF(&CoreType);
    if (PyModule_AddObject(m, "Core", (PyObject *)&CoreType) < 0) { Py_DECREF(m); return NULL; }
    return m;
}
