/* The ports' per-frame hot paths in C: the PACKET_RX_RING walk and PACKET_TX_RING staging.
 *
 * switch/ports.py holds the reference implementation in Python and every policy (counters,
 * pcap, error reasons, what happens when the ring is full); this module repeats its per-frame
 * loops only. Ring layout, TPACKET_V2: Documentation/networking/packet_mmap.rst in the Linux
 * tree, struct tpacket2_hdr in include/uapi/linux/if_packet.h.
 *
 * Memory safety: the rings are shared with the kernel (and anyone with the socket), so every
 * offset and length read from a slot header is checked against the slot before it is used; a
 * slot that fails the checks costs that frame, counted as rx_malformed_slot. The mmap is
 * borrowed through the buffer protocol for each call only, so closing it is never blocked and
 * a closed ring raises ValueError instead of touching unmapped memory.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>

#define TP_STATUS_KERNEL 0u
#define TP_STATUS_USER (1u << 0)
#define TP_STATUS_COPY (1u << 1)
#define TP_STATUS_VLAN_VALID (1u << 4)
#define TP_STATUS_VLAN_TPID_VALID (1u << 6)
#define TP_STATUS_AVAILABLE 0u
#define TP_STATUS_SEND_REQUEST 1u
#define TP_STATUS_WRONG_FORMAT (1u << 2)
#define TPACKET2_HDR_BYTES 32u          /* sizeof(struct tpacket2_hdr) */
#define SLL_PKTTYPE_OFFSET (32u + 10u)  /* sockaddr_ll.sll_pkttype after the header */
#define PACKET_OUTGOING 4u
#define TX_VNET_OFFSET 32u              /* TPACKET2_HDRLEN - sizeof(sockaddr_ll) */
#define VNET_HDR_BYTES 10u              /* struct virtio_net_hdr */
#define TX_DATA_OFFSET (TX_VNET_OFFSET + VNET_HDR_BYTES)
#define ETH_HLEN 14u
#define MAX_BATCH 4096                  /* frames per walk: bounds the stack arrays below */

struct tpacket2_hdr {
    uint32_t tp_status, tp_len, tp_snaplen;
    uint16_t tp_mac, tp_net;
    uint32_t tp_sec, tp_nsec;
    uint16_t tp_vlan_tci, tp_vlan_tpid;
    uint8_t tp_padding[4];
};

struct virtio_net_hdr {
    uint8_t flags, gso_type;
    uint16_t hdr_len, gso_size, csum_start, csum_offset;
};

static PyObject *reason_malformed, *reason_too_big, *reason_runt;

/* drops[reason] += n, as ports._count */
static int count_drop(PyObject *drops, PyObject *reason, long n)
{
    PyObject *old = PyDict_GetItemWithError(drops, reason);
    if (old == NULL && PyErr_Occurred())
        return -1;
    long value = old == NULL ? 0 : PyLong_AsLong(old);
    if (value == -1 && PyErr_Occurred())
        return -1;
    PyObject *updated = PyLong_FromLong(value + n);
    if (updated == NULL)
        return -1;
    int rc = PyDict_SetItem(drops, reason, updated);
    Py_DECREF(updated);
    return rc;
}

/* The ring as a writable buffer holding ``slots`` slots of ``slot`` bytes, or -1 with an error. */
static int borrow_ring(PyObject *ring, Py_buffer *view, Py_ssize_t slot, Py_ssize_t slots)
{
    if (PyObject_GetBuffer(ring, view, PyBUF_WRITABLE) < 0)
        return -1;
    if (slot < (Py_ssize_t)sizeof(struct tpacket2_hdr) + 64 || slots <= 0 || view->len / slot < slots) {
        PyBuffer_Release(view);
        PyErr_SetString(PyExc_ValueError, "ring geometry does not fit the buffer");
        return -1;
    }
    return 0;
}

static inline uint32_t status_of(const uint8_t *slot)
{
    return __atomic_load_n((const uint32_t *)slot, __ATOMIC_ACQUIRE);
}

/* One frame out of a TP_STATUS_USER slot, the 802.1Q tag put back; NULL with no error if the
 * header's offsets do not fit the slot. */
static PyObject *frame_of(const uint8_t *base, const struct tpacket2_hdr *h, uint32_t status, Py_ssize_t slot)
{
    uint32_t mac = h->tp_mac, captured = h->tp_snaplen;
    if (mac < TPACKET2_HDR_BYTES || mac > (uint32_t)slot || captured > (uint32_t)slot - mac)
        return NULL;
    const uint8_t *data = base + mac;
    if (!(status & TP_STATUS_VLAN_VALID))
        return PyBytes_FromStringAndSize((const char *)data, captured);
    uint16_t tpid = status & TP_STATUS_VLAN_TPID_VALID ? h->tp_vlan_tpid : 0x8100;
    PyObject *frame = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)captured + 4);
    if (frame == NULL)
        return NULL;
    uint8_t *out = (uint8_t *)PyBytes_AS_STRING(frame);
    memcpy(out, data, 12);
    out[12] = tpid >> 8; out[13] = tpid & 0xff;
    out[14] = h->tp_vlan_tci >> 8; out[15] = h->tp_vlan_tci & 0xff;
    memcpy(out + 16, data + 12, captured - 12);
    return frame;
}

PyDoc_STRVAR(rx_walk_doc,
"rx_walk(ring, slot, slots, index, limit, own_frames_seen, fd, drops) -> (frames, index, nbytes)\n\n"
"Port.receive_stamped's walk: up to limit (stamp_ns, frame) pairs from slot index on, each slot\n"
"handed back; stamps never decrease along the ring (Port._order_stamps). Drops are counted in the\n"
"dict drops; a TP_STATUS_COPY frame is taken out of the socket fd's queue.");

static PyObject *rx_walk(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 8) {
        PyErr_SetString(PyExc_TypeError, "rx_walk takes 8 arguments");
        return NULL;
    }
    Py_ssize_t slot = PyLong_AsSsize_t(args[1]), slots = PyLong_AsSsize_t(args[2]);
    Py_ssize_t index = PyLong_AsSsize_t(args[3]), limit = PyLong_AsSsize_t(args[4]);
    int own_frames_seen = PyObject_IsTrue(args[5]);
    int fd = PyLong_AsLong(args[6]);
    PyObject *drops = args[7];
    if (PyErr_Occurred() || own_frames_seen < 0)
        return NULL;
    if (!PyDict_Check(drops)) {
        PyErr_SetString(PyExc_TypeError, "drops must be a dict");
        return NULL;
    }
    Py_buffer view;
    if (borrow_ring(args[0], &view, slot, slots) < 0)
        return NULL;
    if (index < 0 || index >= slots) {
        PyBuffer_Release(&view);
        PyErr_SetString(PyExc_ValueError, "ring index out of range");
        return NULL;
    }
    if (limit > MAX_BATCH)
        limit = MAX_BATCH;
    uint8_t *ring = view.buf;
    int64_t stamps[MAX_BATCH];
    PyObject *frames = PyList_New(0), *result = NULL;
    long too_big = 0, runt = 0, malformed = 0;
    Py_ssize_t got = 0, nbytes = 0;
    if (frames == NULL)
        goto done;
    for (Py_ssize_t i = 0; i < limit; i++) {
        uint8_t *base = ring + index * slot;
        uint32_t status = status_of(base);
        if (!(status & TP_STATUS_USER))
            break;
        const struct tpacket2_hdr *h = (const struct tpacket2_hdr *)base;
        if (h->tp_snaplen < h->tp_len) {   /* larger than a ring slot (e.g. GSO from a host) */
            too_big++;
            if (status & TP_STATUS_COPY) {
                char scrap;
                recv(fd, &scrap, 1, MSG_DONTWAIT | MSG_TRUNC);   /* the queued full frame, unused */
            }
        } else if (h->tp_len < ETH_HLEN) {
            runt++;
        } else if (!own_frames_seen || base[SLL_PKTTYPE_OFFSET] != PACKET_OUTGOING) {
            PyObject *frame = frame_of(base, h, status, slot);
            if (frame == NULL) {
                if (PyErr_Occurred())
                    goto done;
                malformed++;
            } else {
                stamps[got++] = (int64_t)h->tp_sec * 1000000000 + h->tp_nsec;
                nbytes += PyBytes_GET_SIZE(frame);
                int rc = PyList_Append(frames, frame);
                Py_DECREF(frame);
                if (rc < 0)
                    goto done;
            }
        }
        __atomic_store_n((uint32_t *)base, TP_STATUS_KERNEL, __ATOMIC_RELEASE);
        if (++index == slots)
            index = 0;
    }
    if (got) {
        /* Port._order_stamps: no frame later than any after it, or than the next waiting slot */
        const uint8_t *next = ring + index * slot;
        const struct tpacket2_hdr *nh = (const struct tpacket2_hdr *)next;
        int64_t bound = status_of(next) & TP_STATUS_USER
            ? (int64_t)nh->tp_sec * 1000000000 + nh->tp_nsec : stamps[got - 1];
        for (Py_ssize_t i = got - 1; i >= 0; i--) {
            if (stamps[i] > bound)
                stamps[i] = bound;
            else
                bound = stamps[i];
        }
        for (Py_ssize_t i = 0; i < got; i++) {
            PyObject *frame = PyList_GET_ITEM(frames, i);
            PyObject *pair = PyTuple_New(2), *stamp = PyLong_FromLongLong(stamps[i]);
            if (pair == NULL || stamp == NULL) {
                Py_XDECREF(pair);
                Py_XDECREF(stamp);
                goto done;
            }
            PyTuple_SET_ITEM(pair, 0, stamp);
            PyTuple_SET_ITEM(pair, 1, frame);        /* the list's reference moves to the pair */
            PyList_SET_ITEM(frames, i, pair);
        }
    }
    if ((too_big && count_drop(drops, reason_too_big, too_big) < 0)
        || (runt && count_drop(drops, reason_runt, runt) < 0)
        || (malformed && count_drop(drops, reason_malformed, malformed) < 0))
        goto done;
    result = Py_BuildValue("(Onn)", frames, index, nbytes);
done:
    Py_XDECREF(frames);
    PyBuffer_Release(&view);
    return result;
}

PyDoc_STRVAR(rx_oldest_doc,
"rx_oldest(ring, slot, slots) -> index\n\n"
"The slot of the oldest frame waiting in the ring (Port.resync), -1 if none waits.");

static PyObject *rx_oldest(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 3) {
        PyErr_SetString(PyExc_TypeError, "rx_oldest takes 3 arguments");
        return NULL;
    }
    Py_ssize_t slot = PyLong_AsSsize_t(args[1]), slots = PyLong_AsSsize_t(args[2]);
    if (PyErr_Occurred())
        return NULL;
    Py_buffer view;
    if (borrow_ring(args[0], &view, slot, slots) < 0)
        return NULL;
    Py_ssize_t oldest = -1;
    uint64_t oldest_sec = 0, oldest_nsec = 0;
    for (Py_ssize_t index = 0; index < slots; index++) {
        const uint8_t *base = (const uint8_t *)view.buf + index * slot;
        if (!(status_of(base) & TP_STATUS_USER))
            continue;
        const struct tpacket2_hdr *h = (const struct tpacket2_hdr *)base;
        if (oldest < 0 || h->tp_sec < oldest_sec || (h->tp_sec == oldest_sec && h->tp_nsec < oldest_nsec)) {
            oldest = index;
            oldest_sec = h->tp_sec;
            oldest_nsec = h->tp_nsec;
        }
    }
    PyBuffer_Release(&view);
    return PyLong_FromSsize_t(oldest);
}

/* ---- the transmit ring ---- */

typedef struct {
    PyObject_HEAD
    PyObject *ring;          /* the mmap */
    Py_ssize_t slot, slots, next, max_len, batch;
    int fd;
    PyObject *staged;        /* frames in SEND_REQUEST slots, oldest first (Port._staged) */
    PyObject *on_batch;      /* called with no argument once ``batch`` frames are staged */
    PyObject *on_refused;    /* stage(frame)'s answer when the ring cannot take the frame now */
} TxRing;

static int TxRing_init(TxRing *self, PyObject *args, PyObject *kwds)
{
    static char *names[] = {"ring", "slot", "slots", "max_len", "batch", "fd", "on_batch", "on_refused", NULL};
    PyObject *ring, *on_batch, *on_refused;
    Py_ssize_t slot, slots, max_len, batch;
    int fd;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OnnnniOO", names, &ring, &slot, &slots, &max_len,
                                     &batch, &fd, &on_batch, &on_refused))
        return -1;
    Py_buffer view;
    if (borrow_ring(ring, &view, slot, slots) < 0)
        return -1;
    PyBuffer_Release(&view);
    if (max_len < (Py_ssize_t)ETH_HLEN || max_len > slot - (Py_ssize_t)TX_DATA_OFFSET || max_len > 0xffff) {
        PyErr_SetString(PyExc_ValueError, "max_len does not fit a slot");
        return -1;
    }
    PyObject *staged = PyList_New(0);
    if (staged == NULL)
        return -1;
    Py_XSETREF(self->staged, staged);
    Py_INCREF(ring);
    Py_XSETREF(self->ring, ring);
    Py_INCREF(on_batch);
    Py_XSETREF(self->on_batch, on_batch);
    Py_INCREF(on_refused);
    Py_XSETREF(self->on_refused, on_refused);
    self->slot = slot;
    self->slots = slots;
    self->max_len = max_len;
    self->batch = batch;
    self->fd = fd;
    self->next = 0;
    return 0;
}

static int TxRing_traverse(TxRing *self, visitproc visit, void *arg)
{
    Py_VISIT(self->ring);
    Py_VISIT(self->staged);
    Py_VISIT(self->on_batch);
    Py_VISIT(self->on_refused);
    return 0;
}

static int TxRing_clear(TxRing *self)
{
    Py_CLEAR(self->ring);
    Py_CLEAR(self->staged);
    Py_CLEAR(self->on_batch);
    Py_CLEAR(self->on_refused);
    return 0;
}

static void TxRing_dealloc(TxRing *self)
{
    PyObject_GC_UnTrack(self);
    TxRing_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

/* Copy ``frame`` into the next slot and hand it to the kernel: 1 staged, 0 the slot is busy
 * or the length out of range, -1 error. */
static int put(TxRing *self, PyObject *frame)
{
    if (self->ring == NULL) {
        PyErr_SetString(PyExc_ValueError, "transmit ring closed");
        return -1;
    }
    Py_buffer data;
    if (PyObject_GetBuffer(frame, &data, PyBUF_SIMPLE) < 0)
        return -1;
    int rc = 0;
    if (data.len < (Py_ssize_t)ETH_HLEN || data.len > self->max_len)
        goto done;
    Py_buffer view;
    if (borrow_ring(self->ring, &view, self->slot, self->slots) < 0) {
        rc = -1;
        goto done;
    }
    uint8_t *base = (uint8_t *)view.buf + self->next * self->slot;
    if ((status_of(base) & 0xff) == TP_STATUS_AVAILABLE) {   /* the low byte: every transmit state */
        uint32_t length = (uint32_t)data.len;
        memcpy(base + TX_DATA_OFFSET, data.buf, length);
        struct tpacket2_hdr *h = (struct tpacket2_hdr *)base;
        h->tp_len = h->tp_snaplen = length + VNET_HDR_BYTES;
        /* hdr_len = the whole frame: the kernel copies it all, the slot is free once sent */
        struct virtio_net_hdr vnet = {0, 0, (uint16_t)length, 0, 0, 0};
        memcpy(base + TX_VNET_OFFSET, &vnet, sizeof vnet);
        __atomic_store_n((uint32_t *)base, TP_STATUS_SEND_REQUEST, __ATOMIC_RELEASE);   /* last */
        self->next = self->next + 1 < self->slots ? self->next + 1 : 0;
        rc = PyList_Append(self->staged, frame) < 0 ? -1 : 1;
    }
    PyBuffer_Release(&view);
done:
    PyBuffer_Release(&data);
    return rc;
}

static PyObject *TxRing_stage(TxRing *self, PyObject *frame)
{
    int rc = put(self, frame);
    if (rc < 0)
        return NULL;
    if (rc == 0)
        return PyObject_CallOneArg(self->on_refused, frame);
    if (PyList_GET_SIZE(self->staged) >= self->batch) {
        PyObject *done = PyObject_CallNoArgs(self->on_batch);
        if (done == NULL)
            return NULL;
        Py_DECREF(done);
    }
    Py_RETURN_TRUE;
}

static PyObject *TxRing_try_stage(TxRing *self, PyObject *frame)
{
    int rc = put(self, frame);
    if (rc < 0)
        return NULL;
    return PyBool_FromLong(rc);
}

/* One send() kicking every staged slot, then Port._take_back: the kernel stops at the first
 * slot it cannot send, so what it left is the tail of the staged slots; those are free again
 * and our position moves back to the first. (taken, taken_bytes, left, errno) */
static PyObject *TxRing_kick(TxRing *self, PyObject *unused)
{
    if (self->ring == NULL) {
        PyErr_SetString(PyExc_ValueError, "transmit ring closed");
        return NULL;
    }
    Py_buffer view;
    if (borrow_ring(self->ring, &view, self->slot, self->slots) < 0)
        return NULL;
    ssize_t rc;
    int code = 0;
    Py_BEGIN_ALLOW_THREADS
    rc = send(self->fd, NULL, 0, 0);
    if (rc < 0)
        code = errno;
    Py_END_ALLOW_THREADS
    Py_ssize_t count = PyList_GET_SIZE(self->staged), left = 0, index = self->next;
    while (left < count) {
        Py_ssize_t previous = (index ? index : self->slots) - 1;
        uint8_t *base = (uint8_t *)view.buf + previous * self->slot;
        uint32_t status = status_of(base) & 0xff;   /* the low byte holds every transmit state */
        if (status != TP_STATUS_SEND_REQUEST && status != TP_STATUS_WRONG_FORMAT)
            break;
        __atomic_store_n((uint32_t *)base, TP_STATUS_AVAILABLE, __ATOMIC_RELEASE);
        index = previous;
        left++;
    }
    PyBuffer_Release(&view);
    self->next = index;
    Py_ssize_t taken = count - left, nbytes = 0;
    for (Py_ssize_t i = 0; i < taken; i++) {
        Py_ssize_t size = PyObject_Length(PyList_GET_ITEM(self->staged, i));
        if (size < 0)
            return NULL;
        nbytes += size;
    }
    return Py_BuildValue("(nnni)", taken, nbytes, left, code);
}

static PyObject *TxRing_close(TxRing *self, PyObject *unused)
{
    TxRing_clear(self);       /* the callbacks are Port methods: no cycle outlives the port */
    Py_RETURN_NONE;
}

static PyObject *TxRing_get_next(TxRing *self, void *closure)
{
    return PyLong_FromSsize_t(self->next);
}

static PyObject *TxRing_get_staged(TxRing *self, void *closure)
{
    if (self->staged == NULL)
        return PyList_New(0);
    Py_INCREF(self->staged);
    return self->staged;
}

static PyMethodDef TxRing_methods[] = {
    {"stage", (PyCFunction)TxRing_stage, METH_O,
     "stage(frame) -> bool: Port.stage; calls on_batch once batch frames wait, on_refused(frame) "
     "(and returns its answer) when the frame does not fit or the next slot is busy"},
    {"try_stage", (PyCFunction)TxRing_try_stage, METH_O,
     "try_stage(frame) -> bool: stage without callbacks; False if it did not fit or the slot is busy"},
    {"kick", (PyCFunction)TxRing_kick, METH_NOARGS,
     "kick() -> (taken, taken_bytes, left, errno): one send() and the take-back after it"},
    {"close", (PyCFunction)TxRing_close, METH_NOARGS, "drop the ring and the callbacks"},
    {NULL}
};

static PyGetSetDef TxRing_getset[] = {
    {"next", (getter)TxRing_get_next, NULL, "the slot the next staged frame goes into", NULL},
    {"staged", (getter)TxRing_get_staged, NULL, "frames waiting for kick(), oldest first (a live list)", NULL},
    {NULL}
};

static PyTypeObject TxRingType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "native_ports.TxRing",
    .tp_basicsize = sizeof(TxRing),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "TxRing(ring, slot, slots, max_len, batch, fd, on_batch, on_refused): PACKET_TX_RING staging",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)TxRing_init,
    .tp_dealloc = (destructor)TxRing_dealloc,
    .tp_traverse = (traverseproc)TxRing_traverse,
    .tp_clear = (inquiry)TxRing_clear,
    .tp_methods = TxRing_methods,
    .tp_getset = TxRing_getset,
};

static PyMethodDef module_methods[] = {
    {"rx_walk", (PyCFunction)(void (*)(void))rx_walk, METH_FASTCALL, rx_walk_doc},
    {"rx_oldest", (PyCFunction)(void (*)(void))rx_oldest, METH_FASTCALL, rx_oldest_doc},
    {NULL}
};

static struct PyModuleDef module_def = {PyModuleDef_HEAD_INIT, "@FL_MODULE@", NULL, -1, module_methods};

PyMODINIT_FUNC PyInit_@FL_MODULE@(void)
{
    reason_malformed = PyUnicode_InternFromString("rx_malformed_slot");
    reason_too_big = PyUnicode_InternFromString("rx_too_big");
    reason_runt = PyUnicode_InternFromString("rx_runt");
    if (!reason_malformed || !reason_too_big || !reason_runt || PyType_Ready(&TxRingType) < 0)
        return NULL;
    PyObject *module = PyModule_Create(&module_def);
    if (module == NULL)
        return NULL;
    Py_INCREF(&TxRingType);
    if (PyModule_AddObject(module, "TxRing", (PyObject *)&TxRingType) < 0) {
        Py_DECREF(&TxRingType);
        Py_DECREF(module);
        return NULL;
    }
    return module;
}
