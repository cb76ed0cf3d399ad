/* The per-frame loops of bench/rawflow.py in C, so that neither the sender nor the receiver of
 * `fabriclab bench dataplane` limits the figure: sendmmsg()/recvmmsg() in batches on a bound
 * AF_PACKET socket the caller opened, with the GIL released for the whole run.
 *
 *   send_loop(fd, frame, rate, seconds) -> (sent, refused, elapsed_s)
 *       frame copies at `rate` frames/s (0: flat out); a frame the kernel refuses (full
 *       buffer, busy device) is counted apart and not retried.
 *   count_loop(fd, tag, offset, seconds) -> count
 *       frames carrying `tag` at byte `offset` received within `seconds`.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#define BATCH 64
#define RX_FRAME 2048

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void sleep_s(double seconds) {
    struct timespec ts = {(time_t)seconds, (long)((seconds - (time_t)seconds) * 1e9)};
    nanosleep(&ts, NULL);
}

static PyObject *send_loop(PyObject *self, PyObject *args) {
    (void)self;
    int fd;
    Py_buffer frame;
    double rate, seconds;
    if (!PyArg_ParseTuple(args, "iy*dd", &fd, &frame, &rate, &seconds))
        return NULL;
    struct iovec iov = {frame.buf, (size_t)frame.len};
    struct mmsghdr msgs[BATCH];
    memset(msgs, 0, sizeof msgs);
    for (int i = 0; i < BATCH; i++) {
        msgs[i].msg_hdr.msg_iov = &iov;
        msgs[i].msg_hdr.msg_iovlen = 1;
    }
    unsigned long long sent = 0, refused = 0;
    double start, now, end;
    Py_BEGIN_ALLOW_THREADS
    start = now = now_s();
    end = start + seconds;
    while (now < end) {
        long long due = BATCH;
        if (rate > 0) {
            due = (long long)(rate * (now - start)) - (long long)(sent + refused);
            if (due <= 0) {
                /* ahead of schedule: wait for the next frame's slot, at most 0.5 ms */
                double wait = (sent + refused + 1) / rate - (now - start);
                sleep_s(wait < 0.0005 ? wait : 0.0005);
                now = now_s();
                continue;
            }
            if (due > BATCH)
                due = BATCH;
        }
        int n = sendmmsg(fd, msgs, (unsigned)due, MSG_DONTWAIT);
        if (n > 0) {
            sent += (unsigned)n;
        } else if (errno != EINTR) {
            refused += 1;   /* ENOBUFS / EAGAIN: the first frame of the batch was refused */
        }
        now = now_s();
    }
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&frame);
    return Py_BuildValue("KKd", sent, refused, now - start);
}

static PyObject *count_loop(PyObject *self, PyObject *args) {
    (void)self;
    int fd, offset;
    Py_buffer tag;
    double seconds;
    if (!PyArg_ParseTuple(args, "iy*id", &fd, &tag, &offset, &seconds))
        return NULL;
    if (offset < 0 || offset + tag.len > RX_FRAME) {
        PyBuffer_Release(&tag);
        PyErr_SetString(PyExc_ValueError, "tag does not fit in a received frame");
        return NULL;
    }
    static unsigned char bufs[BATCH][RX_FRAME];
    struct iovec iovs[BATCH];
    struct mmsghdr msgs[BATCH];
    memset(msgs, 0, sizeof msgs);
    for (int i = 0; i < BATCH; i++) {
        iovs[i].iov_base = bufs[i];
        iovs[i].iov_len = RX_FRAME;
        msgs[i].msg_hdr.msg_iov = &iovs[i];
        msgs[i].msg_hdr.msg_iovlen = 1;
    }
    unsigned long long count = 0;
    size_t end_of_tag = (size_t)offset + (size_t)tag.len;
    Py_BEGIN_ALLOW_THREADS
    double end = now_s() + seconds;
    struct pollfd pfd = {fd, POLLIN, 0};
    for (double now = now_s(); now < end; now = now_s()) {
        int n = recvmmsg(fd, msgs, BATCH, MSG_DONTWAIT, NULL);
        if (n <= 0) {
            poll(&pfd, 1, 10);
            continue;
        }
        for (int i = 0; i < n; i++)
            if (msgs[i].msg_len >= end_of_tag && memcmp(bufs[i] + offset, tag.buf, (size_t)tag.len) == 0)
                count++;
    }
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&tag);
    return PyLong_FromUnsignedLongLong(count);
}

static PyMethodDef methods[] = {
    {"send_loop", send_loop, METH_VARARGS, "send_loop(fd, frame, rate, seconds) -> (sent, refused, elapsed_s)"},
    {"count_loop", count_loop, METH_VARARGS, "count_loop(fd, tag, offset, seconds) -> frames with the tag"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module_def = {PyModuleDef_HEAD_INIT, "@FL_MODULE@", NULL, -1, methods};

PyMODINIT_FUNC PyInit_@FL_MODULE@(void) {
    return PyModule_Create(&module_def);
}
