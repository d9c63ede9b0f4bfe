/* SPDX-License-Identifier: Apache-2.0 */
/* The record proc_events.bpf.c writes to its ring buffer; collectors/proc_events.py mirrors it
 * (and a test checks that mirror against this object's BTF). */
#ifndef PXL_PROC_EVENTS_H
#define PXL_PROC_EVENTS_H

enum process_event_kind {
	PROC_EXEC = 1, /* a process replaced its program (sched_process_exec) */
	PROC_EXIT = 2, /* the last thread of a process exited (sched_process_exit) */
};

struct process_event {
	__u64 ts_ns;     /* bpf_ktime_get_ns() */
	__u32 kind;      /* enum process_event_kind */
	__u32 pid;       /* the thread that exec'd or exited last */
	__u32 tgid;      /* the process */
	__u32 ppid;      /* its parent process */
	__u64 start_ns;  /* the process's start, ns since boot (start_boottime, as /proc/<pid>/stat) */
	__s32 exit_code; /* exit status 0-255 (PROC_EXIT, not killed by a signal) */
	__u32 signal;    /* the signal that killed it, 0 if none (PROC_EXIT) */
	char comm[16];
};

#endif /* PXL_PROC_EVENTS_H */
