/*
 * fake_hid: a virtual WoodenHaptics 1.5 or Haptikfabriken Polhem made through /dev/uhid, for the
 * real-HID-path test in the VM (scripts/vm-hid-test.sh). Written from the documented report
 * layouts (docs/haptics.md), independently of haptwin's Rust codecs.
 *
 *   fake_hid woodenhaptics|polhem --out FILE [--unplug-after N]
 *
 * - Creates the device (UHID_CREATE2, bus USB, the device's VID:PID, a vendor-defined report
 *   descriptor with one input and one output report of the device's size, no report IDs).
 * - Once the kernel has started it, sends an input report (UHID_INPUT2) about every millisecond
 *   with fixed, distinctive encoder counts and an incrementing counter:
 *     woodenhaptics (8 bytes, little-endian): i16 A, B, C = 100, -200, 300; u16 counter.
 *     polhem (14 bytes): i16 a, b, c = 150, -250, 350 (arm); d, e, f = 10, 20, 30 (gimbal);
 *     i16 info = 1 (bit 0: calibration switch).
 * - Appends every output report it receives (UHID_OUTPUT) to FILE as one line of lowercase hex,
 *   the payload only (the leading report-ID byte 0, which hidraw passes on, is stripped), and
 *   flushes each line.
 * - polhem: an output report with command (fourth i16) = 1 sets the encoder counters: a, b, c :=
 *   attr0..attr2 (the fifth to seventh i16) and d, e, f := the three current fields; later input
 *   reports carry the new counts.
 * - After N output reports (N > 0) it sends UHID_DESTROY (the device is unplugged) and exits 0.
 *
 * Progress goes to stderr, one line per event worth knowing, prefixed "fake_hid <device>:".
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/uhid.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define BUS_USB_ID 0x03 /* BUS_USB from <linux/input.h> */

struct profile {
    const char *key;
    const char *name;
    uint32_t vendor;
    uint32_t product;
    unsigned report_len; /* input and output payload, bytes */
};

static const struct profile PROFILES[] = {
    {"woodenhaptics", "WoodenHaptics 1.5 (uhid)", 0x1234, 0x0006, 8},
    {"polhem", "Haptikfabriken Polhem (uhid)", 0x16C0, 0x0486, 14},
};

static const struct profile *prof;
static int16_t counts[6]; /* woodenhaptics: A, B, C; polhem: a..f */
static uint16_t counter;  /* woodenhaptics input counter */
static int started;
static long sets; /* polhem set-encoders commands taken */

static void die(const char *what)
{
    fprintf(stderr, "fake_hid %s: %s: %s\n", prof ? prof->key : "?", what, strerror(errno));
    exit(1);
}

static void put_i16(uint8_t *p, int16_t v)
{
    uint16_t u = (uint16_t)v;
    p[0] = (uint8_t)(u & 0xff);
    p[1] = (uint8_t)(u >> 8);
}

static int16_t get_i16(const uint8_t *p)
{
    return (int16_t)(uint16_t)(p[0] | (p[1] << 8));
}

static void send_event(int fd, const struct uhid_event *ev, const char *what)
{
    ssize_t n = write(fd, ev, sizeof(*ev));
    if (n != (ssize_t)sizeof(*ev))
        die(what);
}

/* Vendor-defined page 0xFF00: one application collection with an input and an output report
 * of `len` bytes each (8-bit fields, 0..255), no report IDs. */
static size_t build_descriptor(uint8_t *d, unsigned len)
{
    size_t i = 0;
    d[i++] = 0x06; d[i++] = 0x00; d[i++] = 0xFF; /* Usage Page (vendor 0xFF00) */
    d[i++] = 0x09; d[i++] = 0x01;                /* Usage (1) */
    d[i++] = 0xA1; d[i++] = 0x01;                /* Collection (Application) */
    d[i++] = 0x15; d[i++] = 0x00;                /*   Logical Minimum (0) */
    d[i++] = 0x26; d[i++] = 0xFF; d[i++] = 0x00; /*   Logical Maximum (255) */
    d[i++] = 0x75; d[i++] = 0x08;                /*   Report Size (8) */
    d[i++] = 0x95; d[i++] = (uint8_t)len;        /*   Report Count (len) */
    d[i++] = 0x09; d[i++] = 0x02;                /*   Usage (2) */
    d[i++] = 0x81; d[i++] = 0x02;                /*   Input (Data, Variable, Absolute) */
    d[i++] = 0x95; d[i++] = (uint8_t)len;        /*   Report Count (len) */
    d[i++] = 0x09; d[i++] = 0x03;                /*   Usage (3) */
    d[i++] = 0x91; d[i++] = 0x02;                /*   Output (Data, Variable, Absolute) */
    d[i++] = 0xC0;                               /* End Collection */
    return i;
}

static void create_device(int fd)
{
    struct uhid_event ev;
    memset(&ev, 0, sizeof(ev));
    ev.type = UHID_CREATE2;
    snprintf((char *)ev.u.create2.name, sizeof(ev.u.create2.name), "%s", prof->name);
    snprintf((char *)ev.u.create2.phys, sizeof(ev.u.create2.phys), "uhid/fake_hid/%s", prof->key);
    snprintf((char *)ev.u.create2.uniq, sizeof(ev.u.create2.uniq), "FAKE-%s", prof->key);
    ev.u.create2.rd_size = (uint16_t)build_descriptor(ev.u.create2.rd_data, prof->report_len);
    ev.u.create2.bus = BUS_USB_ID;
    ev.u.create2.vendor = prof->vendor;
    ev.u.create2.product = prof->product;
    ev.u.create2.version = 0x0100;
    ev.u.create2.country = 0;
    send_event(fd, &ev, "UHID_CREATE2");
}

static void send_input(int fd)
{
    struct uhid_event ev;
    memset(&ev, 0, sizeof(ev));
    ev.type = UHID_INPUT2;
    uint8_t *p = ev.u.input2.data;
    if (prof->report_len == 8) {
        for (int k = 0; k < 3; k++)
            put_i16(p + 2 * k, counts[k]);
        p[6] = (uint8_t)(counter & 0xff);
        p[7] = (uint8_t)(counter >> 8);
        counter++;
    } else {
        for (int k = 0; k < 6; k++)
            put_i16(p + 2 * k, counts[k]);
        put_i16(p + 12, 1); /* info: calibration switch set */
    }
    ev.u.input2.size = (uint16_t)prof->report_len;
    /* The kernel refuses input before it has started the device, or while it is going away. */
    if (write(fd, &ev, sizeof(ev)) < 0 && errno != EINVAL)
        die("UHID_INPUT2");
}

/* Handles one output report; returns 1 when it was a device output report (counted). */
static int take_output(const struct uhid_output_req *out, FILE *log)
{
    const uint8_t *p = out->data;
    unsigned n = out->size;
    if (out->rtype != UHID_OUTPUT_REPORT)
        return 0;
    /* hidraw passes the report-ID byte (0: no numbered reports) on to the device. */
    if (n == prof->report_len + 1 && p[0] == 0) {
        p++;
        n--;
    }
    for (unsigned i = 0; i < n; i++)
        fprintf(log, "%02x", p[i]);
    fputc('\n', log);
    if (fflush(log) != 0)
        die("writing the output log");
    if (prof->report_len == 14 && n == 14 && get_i16(p + 6) == 1) {
        for (int k = 0; k < 3; k++) {
            counts[k] = get_i16(p + 8 + 2 * k);   /* a, b, c := attr0..attr2 */
            counts[3 + k] = get_i16(p + 2 * k); /* d, e, f := the current fields */
        }
        if (++sets <= 2)
            fprintf(stderr, "fake_hid %s: encoders set to %d %d %d %d %d %d%s\n", prof->key,
                    counts[0], counts[1], counts[2], counts[3], counts[4], counts[5],
                    sets == 2 ? " (further sets counted, not shown)" : "");
    }
    return 1;
}

static void reply_get_report(int fd, const struct uhid_get_report_req *req)
{
    struct uhid_event ev;
    memset(&ev, 0, sizeof(ev));
    ev.type = UHID_GET_REPORT_REPLY;
    ev.u.get_report_reply.id = req->id;
    ev.u.get_report_reply.err = EIO;
    send_event(fd, &ev, "UHID_GET_REPORT_REPLY");
}

static void reply_set_report(int fd, const struct uhid_set_report_req *req)
{
    struct uhid_event ev;
    memset(&ev, 0, sizeof(ev));
    ev.type = UHID_SET_REPORT_REPLY;
    ev.u.set_report_reply.id = req->id;
    ev.u.set_report_reply.err = EIO;
    send_event(fd, &ev, "UHID_SET_REPORT_REPLY");
}

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void usage(void)
{
    fprintf(stderr, "usage: fake_hid woodenhaptics|polhem --out FILE [--unplug-after N]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    const char *out_path = NULL;
    long unplug_after = 0;
    if (argc < 2)
        usage();
    for (size_t i = 0; i < sizeof(PROFILES) / sizeof(PROFILES[0]); i++)
        if (strcmp(argv[1], PROFILES[i].key) == 0)
            prof = &PROFILES[i];
    if (!prof)
        usage();
    for (int i = 2; i < argc; i++) {
        if (strcmp(argv[i], "--out") == 0 && i + 1 < argc)
            out_path = argv[++i];
        else if (strcmp(argv[i], "--unplug-after") == 0 && i + 1 < argc)
            unplug_after = strtol(argv[++i], NULL, 10);
        else
            usage();
    }
    if (!out_path)
        usage();

    if (prof->report_len == 8) {
        counts[0] = 100;
        counts[1] = -200;
        counts[2] = 300;
    } else {
        const int16_t init[6] = {150, -250, 350, 10, 20, 30};
        memcpy(counts, init, sizeof(init));
    }

    FILE *log = fopen(out_path, "w");
    if (!log)
        die(out_path);
    signal(SIGPIPE, SIG_IGN);
    int fd = open("/dev/uhid", O_RDWR | O_CLOEXEC);
    if (fd < 0)
        die("/dev/uhid");
    create_device(fd);
    fprintf(stderr, "fake_hid %s: created %04x:%04x \"%s\", unplug after %ld outputs\n",
            prof->key, prof->vendor, prof->product, prof->name, unplug_after);

    const uint64_t period_ns = 1000000;
    uint64_t next = now_ns() + period_ns;
    long outputs = 0;
    for (;;) {
        uint64_t t = now_ns();
        if (started && t >= next) {
            send_input(fd);
            next += period_ns;
            if (next < t) /* fell behind (a slow VM): re-anchor, do not burst */
                next = t + period_ns;
        }
        t = now_ns();
        uint64_t wait = started && next > t ? next - t : (started ? 0 : period_ns);
        struct timespec ts = {(time_t)(wait / 1000000000u), (long)(wait % 1000000000u)};
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        int r = ppoll(&pfd, 1, &ts, NULL);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            die("ppoll");
        }
        if (r == 0 || !(pfd.revents & POLLIN))
            continue;
        struct uhid_event ev;
        memset(&ev, 0, sizeof(ev));
        ssize_t n = read(fd, &ev, sizeof(ev));
        if (n < 0) {
            if (errno == EINTR || errno == EAGAIN)
                continue;
            die("reading /dev/uhid");
        }
        switch (ev.type) {
        case UHID_START:
            started = 1;
            next = now_ns();
            fprintf(stderr, "fake_hid %s: started\n", prof->key);
            break;
        case UHID_STOP:
            started = 0;
            fprintf(stderr, "fake_hid %s: stopped\n", prof->key);
            break;
        case UHID_OPEN:
        case UHID_CLOSE:
            break;
        case UHID_OUTPUT:
            outputs += take_output(&ev.u.output, log);
            if (unplug_after > 0 && outputs >= unplug_after) {
                memset(&ev, 0, sizeof(ev));
                ev.type = UHID_DESTROY;
                send_event(fd, &ev, "UHID_DESTROY");
                fprintf(stderr, "fake_hid %s: unplugged after %ld outputs (%ld set-encoders)\n",
                        prof->key, outputs, sets);
                fclose(log);
                close(fd);
                return 0;
            }
            break;
        case UHID_GET_REPORT:
            reply_get_report(fd, &ev.u.get_report);
            break;
        case UHID_SET_REPORT:
            reply_set_report(fd, &ev.u.set_report);
            break;
        default:
            break;
        }
    }
}
