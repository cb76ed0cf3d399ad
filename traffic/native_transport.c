/* The RoCE transport's per-packet system-call work in C (traffic/transport.py keeps the
 * reference in Python and uses this where it builds; tests/test_traffic_native.py checks both
 * give the same bytes):
 *
 *   icrc(headers, payload) -> 4 bytes      the RoCEv2 ICRC, as transport.icrc
 *   send_frame(fd, headers, payload) -> n  ICRC appended, one sendmsg; 0 when the socket is full
 *   recv_batch(fd, limit) -> [bytes]       up to limit frames with one recvmmsg per 64
 *   reply(fd, headers, psn, aeth) -> n     an ACK/NAK: PSN patched into headers, AETH, ICRC, sent
 *
 * The CRC is IEEE 802.3's (reflected 0xEDB88320), the one zlib.crc32 computes: zlib's own crc32
 * (already loaded with Python's zlib module, found with dlopen RTLD_NOLOAD) where it is there,
 * as it is several times faster than the byte-wise table below, which is the fallback.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <dlfcn.h>
#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>

#define IP_OFF 14
#define UDP_OFF 34
#define BTH_OFF 42
#define HDR_LEN 54
#define MAX_FRAME 9216
#define RECV_CHUNK 64

static uint32_t crc_table[256];

static void crc_init(void)
{
    for (uint32_t n = 0; n < 256; n++) {
        uint32_t c = n;
        for (int k = 0; k < 8; k++)
            c = c & 1 ? 0xEDB88320u ^ (c >> 1) : c >> 1;
        crc_table[n] = c;
    }
}

typedef unsigned long (*zlib_crc32_fn)(unsigned long, const unsigned char *, unsigned int);
static zlib_crc32_fn zlib_crc32;

static void crc_find_zlib(void)
{
    const char *names[] = {"libz.so.1", "libz.so"};
    for (int i = 0; i < 2 && !zlib_crc32; i++) {
        void *lib = dlopen(names[i], RTLD_NOW | RTLD_NOLOAD);
        if (lib)
            zlib_crc32 = (zlib_crc32_fn)dlsym(lib, "crc32");
    }
}

static uint32_t crc_update(uint32_t crc, const uint8_t *p, Py_ssize_t n)
{
    if (zlib_crc32 && n <= 0x7FFFFFFF)
        return (uint32_t)zlib_crc32(crc, p, (unsigned int)n);
    crc = ~crc;
    while (n--)
        crc = crc_table[(crc ^ *p++) & 0xFF] ^ (crc >> 8);
    return ~crc;
}

/* ICRC over 8 bytes of ones (the absent LRH), the IP/UDP/BTH headers with their variant fields
 * set to ones, then the payload (IBTA RoCEv2 annex A17.4.1.1). */
static uint32_t icrc_of(const uint8_t *hdr, Py_ssize_t hdr_len, const uint8_t *payload, Py_ssize_t n)
{
    uint8_t masked[8 + 128];
    Py_ssize_t ip_len = hdr_len - IP_OFF;
    if (ip_len > 128)
        ip_len = 128;
    memset(masked, 0xFF, 8);
    memcpy(masked + 8, hdr + IP_OFF, ip_len);
    masked[8 + 1] = 0xFF;                                   /* ToS */
    masked[8 + 8] = 0xFF;                                   /* TTL */
    masked[8 + 10] = masked[8 + 11] = 0xFF;                 /* IP header checksum */
    masked[8 + UDP_OFF - IP_OFF + 6] = masked[8 + UDP_OFF - IP_OFF + 7] = 0xFF;   /* UDP checksum */
    masked[8 + BTH_OFF - IP_OFF + 4] = 0xFF;               /* FECN, BECN, resv6 */
    return crc_update(crc_update(0, masked, 8 + ip_len), payload, n);
}

static void put_le32(uint8_t *p, uint32_t v)
{
    p[0] = v; p[1] = v >> 8; p[2] = v >> 16; p[3] = v >> 24;
}

static PyObject *py_icrc(PyObject *self, PyObject *args)
{
    Py_buffer hdr, payload;
    if (!PyArg_ParseTuple(args, "y*y*", &hdr, &payload))
        return NULL;
    uint8_t out[4];
    if (hdr.len < HDR_LEN) {
        PyBuffer_Release(&hdr); PyBuffer_Release(&payload);
        PyErr_SetString(PyExc_ValueError, "headers shorter than Ethernet + IPv4 + UDP + BTH");
        return NULL;
    }
    put_le32(out, icrc_of(hdr.buf, hdr.len, payload.buf, payload.len));
    PyBuffer_Release(&hdr); PyBuffer_Release(&payload);
    return PyBytes_FromStringAndSize((const char *)out, 4);
}

/* sendmsg of iov; the byte count, 0 when the socket buffer is full (EAGAIN, Python's
 * BlockingIOError), NULL with OSError otherwise. */
static PyObject *send_iov(int fd, struct iovec *iov, int count)
{
    struct msghdr msg = {0};
    msg.msg_iov = iov;
    msg.msg_iovlen = count;
    ssize_t sent;
    Py_BEGIN_ALLOW_THREADS
    sent = sendmsg(fd, &msg, MSG_DONTWAIT);
    Py_END_ALLOW_THREADS
    if (sent < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK)
            return PyLong_FromLong(0);
        return PyErr_SetFromErrno(PyExc_OSError);
    }
    return PyLong_FromSsize_t(sent);
}

static PyObject *py_send_frame(PyObject *self, PyObject *args)
{
    int fd;
    Py_buffer hdr, payload;
    if (!PyArg_ParseTuple(args, "iy*y*", &fd, &hdr, &payload))
        return NULL;
    if (hdr.len < HDR_LEN) {
        PyBuffer_Release(&hdr); PyBuffer_Release(&payload);
        PyErr_SetString(PyExc_ValueError, "headers shorter than Ethernet + IPv4 + UDP + BTH");
        return NULL;
    }
    uint8_t crc[4];
    put_le32(crc, icrc_of(hdr.buf, hdr.len, payload.buf, payload.len));
    struct iovec iov[3] = {{hdr.buf, hdr.len}, {payload.buf, payload.len}, {crc, 4}};
    PyObject *result = send_iov(fd, iov, 3);
    PyBuffer_Release(&hdr); PyBuffer_Release(&payload);
    return result;
}

static PyObject *py_reply(PyObject *self, PyObject *args)
{
    int fd;
    Py_buffer hdr;
    unsigned long psn, aeth;
    if (!PyArg_ParseTuple(args, "iw*kk", &fd, &hdr, &psn, &aeth))
        return NULL;
    if (hdr.len < HDR_LEN) {
        PyBuffer_Release(&hdr);
        PyErr_SetString(PyExc_ValueError, "headers shorter than Ethernet + IPv4 + UDP + BTH");
        return NULL;
    }
    uint8_t *h = hdr.buf;
    h[BTH_OFF + 8] = 0;                                   /* AckReq and reserved bits: clear */
    h[BTH_OFF + 9] = psn >> 16; h[BTH_OFF + 10] = psn >> 8; h[BTH_OFF + 11] = psn;
    uint8_t tail[8] = {aeth >> 24, aeth >> 16, aeth >> 8, aeth};
    put_le32(tail + 4, icrc_of(h, hdr.len, tail, 4));
    struct iovec iov[2] = {{h, hdr.len}, {tail, 8}};
    PyObject *result = send_iov(fd, iov, 2);
    PyBuffer_Release(&hdr);
    return result;
}

static PyObject *py_recv_batch(PyObject *self, PyObject *args)
{
    int fd, limit;
    if (!PyArg_ParseTuple(args, "ii", &fd, &limit))
        return NULL;
    PyObject *out = PyList_New(0);
    if (!out)
        return NULL;
    static uint8_t buffers[RECV_CHUNK][MAX_FRAME];
    struct mmsghdr msgs[RECV_CHUNK];
    struct iovec iov[RECV_CHUNK];
    while (limit > 0) {
        int want = limit < RECV_CHUNK ? limit : RECV_CHUNK;
        for (int i = 0; i < want; i++) {
            iov[i].iov_base = buffers[i];
            iov[i].iov_len = MAX_FRAME;
            memset(&msgs[i].msg_hdr, 0, sizeof msgs[i].msg_hdr);
            msgs[i].msg_hdr.msg_iov = &iov[i];
            msgs[i].msg_hdr.msg_iovlen = 1;
        }
        int got;
        Py_BEGIN_ALLOW_THREADS
        got = recvmmsg(fd, msgs, want, MSG_DONTWAIT, NULL);
        Py_END_ALLOW_THREADS
        if (got < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK || errno == ENETDOWN || errno == ENXIO || errno == EINTR)
                break;
            Py_DECREF(out);
            return PyErr_SetFromErrno(PyExc_OSError);
        }
        for (int i = 0; i < got; i++) {
            PyObject *frame = PyBytes_FromStringAndSize((const char *)buffers[i], msgs[i].msg_len);
            if (!frame || PyList_Append(out, frame) < 0) {
                Py_XDECREF(frame);
                Py_DECREF(out);
                return NULL;
            }
            Py_DECREF(frame);
        }
        if (got < want)
            break;
        limit -= got;
    }
    return out;
}

static PyMethodDef module_methods[] = {
    {"icrc", py_icrc, METH_VARARGS, "RoCEv2 ICRC of headers (Ethernet..BTH) and payload, little-endian"},
    {"send_frame", py_send_frame, METH_VARARGS, "send headers + payload + ICRC with one sendmsg; 0 if full"},
    {"reply", py_reply, METH_VARARGS, "send an ACK/NAK: PSN into the headers, AETH, ICRC; 0 if full"},
    {"recv_batch", py_recv_batch, METH_VARARGS, "up to limit frames received with recvmmsg, never blocks"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module_def = {PyModuleDef_HEAD_INIT, "@FL_MODULE@", NULL, -1, module_methods};

PyMODINIT_FUNC PyInit_@FL_MODULE@(void)
{
    crc_init();
    PyObject *zlib = PyImport_ImportModule("zlib");     /* loads libz, if Python has it */
    if (zlib)
        Py_DECREF(zlib);
    else
        PyErr_Clear();
    crc_find_zlib();
    return PyModule_Create(&module_def);
}
