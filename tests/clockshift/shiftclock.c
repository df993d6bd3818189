/* Moves the wall clock (CLOCK_REALTIME, gettimeofday, time) by PGDECK_SHIFT_SECONDS for a
 * process and its children, leaving the monotonic clock and every timed wait alone: the
 * test suite then runs "at another time" while its timeouts keep their real length.
 * (libfaketime fakes sleeps and waits too, which stalls or breaks Python's timed waits.)
 * Built and used by tests/clockshift/run.sh. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdlib.h>
#include <sys/time.h>
#include <time.h>

static long shift(void) {
    static long value = 0;
    static int read = 0;
    if (!read) {
        const char *text = getenv("PGDECK_SHIFT_SECONDS");
        value = text ? atol(text) : 0;
        read = 1;
    }
    return value;
}

int clock_gettime(clockid_t id, struct timespec *ts) {
    static int (*real)(clockid_t, struct timespec *) = 0;
    if (!real) real = (int (*)(clockid_t, struct timespec *))dlsym(RTLD_NEXT, "clock_gettime");
    int rc = real(id, ts);
    if (rc == 0 && ts && (id == CLOCK_REALTIME || id == CLOCK_REALTIME_COARSE)) ts->tv_sec += shift();
    return rc;
}

int gettimeofday(struct timeval *tv, void *tz) {
    static int (*real)(struct timeval *, void *) = 0;
    if (!real) real = (int (*)(struct timeval *, void *))dlsym(RTLD_NEXT, "gettimeofday");
    int rc = real(tv, tz);
    if (rc == 0 && tv) tv->tv_sec += shift();
    return rc;
}

time_t time(time_t *out) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    if (out) *out = ts.tv_sec;
    return ts.tv_sec;
}
