// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* proc_events: processes that exec and exit, host-wide, for proc_exit_events and for the start
 * time that makes a pid a upid. Two sched tracepoints; records go to the `events` ring buffer. */
#include "vmlinux.h"
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_helpers.h>

#include "proc_events.h"

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 20);
} events SEC(".maps");

/* Puts struct process_event in the object's BTF, where tests check the Python mirror against it. */
const struct process_event *process_event_btf __attribute__((unused));

/* [0]: records dropped because the ring buffer was full. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} lost_events SEC(".maps");

static __always_inline void emit(__u32 kind, __s32 exit_code, __u32 signal)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	__u64 id = bpf_get_current_pid_tgid();
	struct process_event ev = {};

	ev.ts_ns = bpf_ktime_get_ns();
	ev.kind = kind;
	ev.pid = (__u32)id;
	ev.tgid = id >> 32;
	ev.ppid = BPF_CORE_READ(task, real_parent, tgid);
	ev.start_ns = BPF_CORE_READ(task, group_leader, start_boottime);
	ev.exit_code = exit_code;
	ev.signal = signal;
	bpf_get_current_comm(ev.comm, sizeof(ev.comm));
	if (bpf_ringbuf_output(&events, &ev, sizeof(ev), 0)) {
		__u32 zero = 0;
		__u64 *lost = bpf_map_lookup_elem(&lost_events, &zero);
		if (lost)
			__sync_fetch_and_add(lost, 1);
	}
}

SEC("tracepoint/sched/sched_process_exec")
int on_exec(void *ctx)
{
	emit(PROC_EXEC, 0, 0);
	return 0;
}

SEC("tracepoint/sched/sched_process_exit")
int on_exit(void *ctx)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	int code;

	if (BPF_CORE_READ(task, signal, live.counter) != 0)
		return 0; /* other threads of the process live on */
	code = BPF_CORE_READ(task, exit_code);
	emit(PROC_EXIT, (code >> 8) & 0xff, code & 0x7f);
	return 0;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
