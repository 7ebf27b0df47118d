/* See gil_probe.c. */
#pragma once

#ifdef __cplusplus
extern "C" {
#endif

/* 1 if a thread holds the GIL, 0 if not, -1 if this Python does not say. Needs no GIL. */
int mthread_gil_locked(void);

#ifdef __cplusplus
}
#endif
