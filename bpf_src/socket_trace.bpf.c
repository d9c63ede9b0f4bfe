// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* socket_trace: the bytes processes move over their TCP/UDP sockets, and their connections.
 *
 * Tracepoints only (no kprobes on this kernel). Every syscall followed here (reads, writes,
 * connect, accept, close, dup2/dup3, close_range) is taken by one program at the raw sys_exit
 * tracepoint, where the registers still hold the call's arguments, so no syscall tracepoint is
 * enabled at entry and no per-syscall one at exit. When the fd of a read or write is a traced
 * connection and the call moved bytes, up to capture_bytes of them are copied into a per-CPU
 * scratch record and written to the `events` ring buffer. Connections live in the `conns`
 * map keyed by (tgid, fd): connect ⇒ client, accept ⇒ server, and (infer_conns) an inet socket
 * first seen in a read/write ⇒ role unknown. Each keeps byte totals (read by the loader for
 * conn_stats) and a host-wide generation number, and is closed by close(), close_range(),
 * dup2/dup3 over its fd, or its process's exec or exit (which look up the process's fds up to
 * the highest one it traced, so processes without traced connections cost one lookup).
 *
 * Settings are the const volatile globals below: the loader writes them into .rodata before
 * load, so the verifier sees them as constants.
 */
#include "vmlinux.h"
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#include "socket_trace.h"

#define AF_INET 2
#define AF_INET6 10
#define S_IFMT 00170000
#define S_IFSOCK 0140000
#define EINPROGRESS 115
#define MAX_IOV 64     /* iovecs looked at per readv/writev/sendmsg/recvmsg */
#define MAX_FILTER 16  /* entries of the pid and port lists */
#define MAX_SWEEP (1 << 20) /* fds looked at when a process execs or exits */

enum direction { EGRESS = 0, INGRESS = 1 };
enum role { ROLE_UNKNOWN = 0, ROLE_CLIENT = 1, ROLE_SERVER = 2 };
enum io_kind { IO_BUF = 0, IO_IOV = 1, IO_MSG = 2, IO_FD = 3 };

/* ---- settings ---- */
const volatile __u32 capture_bytes = MAX_CAPTURE; /* payload bytes kept per syscall */
const volatile __u32 agent_tgid = 0;              /* never traced (the collector's own process) */
const volatile __u32 n_trace_tgids = 0;           /* > 0: trace only these processes */
const volatile __u32 trace_tgids[MAX_FILTER] = {};
const volatile __u32 n_trace_ports = 0;           /* > 0: trace only connections with one of these */
const volatile __u16 trace_ports[MAX_FILTER] = {}; /* ports at either end */
const volatile __u8 infer_conns = 1;              /* adopt sockets opened before we attached */

/* ---- state ---- */
__u32 last_generation = 0;

struct conn_key {
	__u32 tgid;
	__s32 fd;
};

/* The value is the connection's open record, kept up to date (byte totals). Sockets that are
 * not traced (other families, other ports) are remembered with generation 0, so that their
 * reads and writes cost one lookup; they leave the map the way traced ones do. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, struct conn_key);
	__type(value, struct conn_event);
} conns SEC(".maps");

/* Processes with entries in conns → the highest fd they had one on (what exec/exit sweep). */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, __u32);
	__type(value, __u32);
} conn_tgids SEC(".maps");

/* A data record plus room for a copy that starts near the end of data[] (keeps the verifier
 * happy about iovec copies at a variable offset). */
struct scratch {
	struct data_event ev;
	__u8 spill[MAX_CAPTURE];
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct scratch);
} scratch SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 32 << 20);
} events SEC(".maps");

/* A small second ring for the records `events` refuses. The kernel refuses a record when the
 * ring is full, and (Linux 6.15+, whose ring buffer lock gives up rather than wait) now and
 * then with the ring nearly empty: measured here at saturation, a few records per million,
 * every one of which this ring then took. The collector reads it before `events` and puts each
 * record back in its place (collectors/socket_trace.py: merge_spilled). */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 20);
} spill SEC(".maps");

/* [0]: records lost (both rings refused them); [1]: records the spill ring took. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, __u64);
} lost_events SEC(".maps");

/* ---- helpers ---- */

static __always_inline void submit(void *rec, __u64 size)
{
	__u32 slot;
	__u64 *count;

	if (!bpf_ringbuf_output(&events, rec, size, 0))
		return;
	slot = bpf_ringbuf_output(&spill, rec, size, 0) ? 0 : 1;
	count = bpf_map_lookup_elem(&lost_events, &slot);
	if (count)
		__sync_fetch_and_add(count, 1);
}

static __always_inline bool tgid_traced(__u32 tgid)
{
	if (tgid == agent_tgid)
		return false;
	if (n_trace_tgids == 0)
		return true;
	for (int i = 0; i < MAX_FILTER; i++) {
		if (i >= n_trace_tgids)
			break;
		if (trace_tgids[i] == tgid)
			return true;
	}
	return false;
}

static __always_inline bool ports_traced(__u16 local, __u16 remote)
{
	if (n_trace_ports == 0)
		return true;
	for (int i = 0; i < MAX_FILTER; i++) {
		if (i >= n_trace_ports)
			break;
		if (trace_ports[i] == local || trace_ports[i] == remote)
			return true;
	}
	return false;
}

/* A kernel pointer read from memory, made readable by plain loads (no helper calls). */
extern void *bpf_rdonly_cast(const void *obj, __u32 btf_id) __ksym;

/* The struct sock behind an fd of the current process, or NULL if the fd is not a socket. */
static __always_inline struct sock *sock_of_fd(int fd)
{
	struct task_struct *task = bpf_get_current_task_btf();
	struct fdtable *fdt = task->files->fdt;
	struct file *file = NULL, *f;
	struct socket *sock;

	if (fd < 0 || (unsigned int)fd >= fdt->max_fds)
		return NULL;
	bpf_probe_read_kernel(&file, sizeof(file), &fdt->fd[fd]);
	if (!file)
		return NULL;
	f = bpf_rdonly_cast(file, bpf_core_type_id_kernel(struct file));
	if ((f->f_inode->i_mode & S_IFMT) != S_IFSOCK)
		return NULL;
	sock = bpf_rdonly_cast(f->private_data, bpf_core_type_id_kernel(struct socket));
	return sock->sk;
}

/* Family, addresses and ports of an inet socket; false for any other family. */
static __always_inline bool read_addrs(struct sock *sk, struct conn_event *ev)
{
	__u16 family = BPF_CORE_READ(sk, __sk_common.skc_family);

	if (family != AF_INET && family != AF_INET6)
		return false;
	ev->family = family;
	ev->local_port = BPF_CORE_READ(sk, __sk_common.skc_num);
	ev->remote_port = bpf_ntohs(BPF_CORE_READ(sk, __sk_common.skc_dport));
	if (family == AF_INET) {
		__be32 local = BPF_CORE_READ(sk, __sk_common.skc_rcv_saddr);
		__be32 remote = BPF_CORE_READ(sk, __sk_common.skc_daddr);
		__builtin_memcpy(ev->local_addr, &local, 4);
		__builtin_memcpy(ev->remote_addr, &remote, 4);
	} else {
		bpf_core_read(ev->local_addr, 16, &sk->__sk_common.skc_v6_rcv_saddr);
		bpf_core_read(ev->remote_addr, 16, &sk->__sk_common.skc_v6_daddr);
	}
	return true;
}

/* Forget (tgid, fd); if it was a traced connection, say it closed. */
static __always_inline void close_conn(__u32 tgid, __u32 pid, int fd)
{
	struct conn_key key = {.tgid = tgid, .fd = fd};
	struct conn_event *conn = bpf_map_lookup_elem(&conns, &key);
	struct conn_event ev;

	if (!conn)
		return;
	ev = *conn;
	bpf_map_delete_elem(&conns, &key);
	if (!ev.generation)
		return;
	ev.ts_ns = bpf_ktime_get_ns();
	ev.kind = EVENT_CLOSE;
	ev.pid = pid;
	submit(&ev, sizeof(ev));
}

/* (tgid, fd) is now the socket `sk` (NULL: not a socket, nothing to remember): traced if it is
 * an inet socket that passes the port filter. Whatever was on that fd before is closed. */
static __always_inline void open_conn(__u32 tgid, __u32 pid, int fd, __u32 role, struct sock *sk)
{
	struct conn_key key = {.tgid = tgid, .fd = fd};
	struct conn_event ev = {};
	__u32 *max_fd, ufd = fd;

	close_conn(tgid, pid, fd);
	if (!sk)
		return;
	ev.ts_ns = bpf_ktime_get_ns();
	ev.kind = EVENT_OPEN;
	ev.tgid = tgid;
	ev.pid = pid;
	ev.fd = fd;
	ev.role = role;
	if (read_addrs(sk, &ev) && ports_traced(ev.local_port, ev.remote_port))
		ev.generation = __sync_fetch_and_add(&last_generation, 1) + 1;
	bpf_map_update_elem(&conns, &key, &ev, BPF_ANY);
	max_fd = bpf_map_lookup_elem(&conn_tgids, &tgid);
	if (!max_fd)
		bpf_map_update_elem(&conn_tgids, &tgid, &ufd, BPF_NOEXIST);
	else if (*max_fd < ufd)
		*max_fd = ufd;
	if (ev.generation)
		submit(&ev, sizeof(ev));
}

/* The traced connection on (tgid, fd), adopting a socket not seen before if infer_conns
 * (non-sockets are remembered nowhere: each of their calls costs a few kernel reads). */
static __always_inline struct conn_event *traced_conn(__u32 tgid, __u32 pid, int fd)
{
	struct conn_key key = {.tgid = tgid, .fd = fd};
	struct conn_event *conn = bpf_map_lookup_elem(&conns, &key);
	struct sock *sk;

	if (!conn && infer_conns) {
		sk = sock_of_fd(fd);
		if (!sk)
			return NULL;
		open_conn(tgid, pid, fd, ROLE_UNKNOWN, sk);
		conn = bpf_map_lookup_elem(&conns, &key);
	}
	return conn && conn->generation ? conn : NULL;
}

/* ---- close_range, exec and exit close many fds at once ---- */

struct sweep_ctx {
	__u32 tgid;
	__u32 pid;
	__u32 first;
};

static long sweep_fd(__u32 i, struct sweep_ctx *c)
{
	close_conn(c->tgid, c->pid, c->first + i);
	return 0;
}

/* Close the traced connections of the current process on fds first..last. */
static __always_inline void sweep(__u32 first, __u32 last, bool forget_process)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct sweep_ctx c = {.tgid = id >> 32, .pid = (__u32)id, .first = first};
	__u32 *max_fd = bpf_map_lookup_elem(&conn_tgids, &c.tgid);

	if (!max_fd)
		return;
	if (last > *max_fd)
		last = *max_fd;
	if (first <= last)
		bpf_loop(last - first + 1 < MAX_SWEEP ? last - first + 1 : MAX_SWEEP, sweep_fd, &c, 0);
	if (forget_process)
		bpf_map_delete_elem(&conn_tgids, &c.tgid);
}

/* ---- reads and writes ----
 *
 * One program on the raw sys_exit tracepoint, run at the exit of every syscall, takes the eight
 * that move bytes, connect(), and the calls that make or end an fd (fd_changed), by their
 * number. At exit the user registers still hold the call's arguments (x86_64: fd in di,
 * buffer/iovec/msghdr in si, iovec count in dx), so nothing is stashed at entry. Against a pair
 * of per-syscall tracepoint programs with a map entry in between, this saves per call the perf
 * event record the kernel builds for a syscall tracepoint, a program run at entry, and a hash
 * map update, lookup and delete; and a syscall tracepoint enabled for any one call (close at
 * entry, accept at exit) runs the kernel's per-syscall dispatch at every syscall of the host.
 */

/* x86_64 syscall numbers (asm/unistd_64.h). */
#define NR_READ 0
#define NR_WRITE 1
#define NR_READV 19
#define NR_WRITEV 20
#define NR_SENDTO 44
#define NR_RECVFROM 45
#define NR_SENDMSG 46
#define NR_RECVMSG 47
#define NR_CONNECT 42
#define NR_CLOSE 3
#define NR_DUP2 33
#define NR_ACCEPT 43
#define NR_ACCEPT4 288
#define NR_DUP3 292
#define NR_CLOSE_RANGE 436
#define TS_COMPAT 0x0002 /* thread_info.status: a 32-bit syscall (other numbers, other registers) */

/* Copy what the syscall moved through an iovec array, in order, up to capture_bytes. */
static __always_inline __u32 copy_iov(struct scratch *s, const struct iovec *iov, __u64 iovcnt,
				      __u64 moved, __u32 cap)
{
	__u32 off = 0;

	for (int i = 0; i < MAX_IOV; i++) {
		struct iovec v;
		__u64 len;

		if (i >= iovcnt || off >= cap || moved == 0)
			break;
		if (bpf_probe_read_user(&v, sizeof(v), &iov[i]))
			break;
		len = v.iov_len;
		if (len > moved)
			len = moved;
		moved -= len;
		if (len > cap - off)
			len = cap - off;
		barrier_var(len);
		if (len > MAX_CAPTURE)
			len = MAX_CAPTURE;
		bpf_probe_read_user(s->ev.data + (off & (MAX_CAPTURE - 1)), len, v.iov_base);
		off += len;
	}
	return off;
}

/* The bytes a read/write-like call moved on (tgid, fd): byte totals, and a data record. */
static __always_inline void capture(__u64 id, int fd, __u32 kind, __u32 direction, __u64 buf,
				    __u64 iovcnt, long ret, __u32 nr)
{
	struct conn_event *conn;
	struct scratch *s;
	struct data_event *ev;
	__u32 zero = 0, cap = capture_bytes, n;
	__u32 tgid = id >> 32;

	if (fd < 0 || !tgid_traced(tgid))
		return;
	conn = traced_conn(tgid, (__u32)id, fd);
	if (!conn)
		return;
	if (direction == EGRESS)
		__sync_fetch_and_add(&conn->bytes_sent, ret);
	else
		__sync_fetch_and_add(&conn->bytes_recv, ret);

	s = bpf_map_lookup_elem(&scratch, &zero);
	if (!s)
		return;
	ev = &s->ev;
	ev->ts_ns = bpf_ktime_get_ns();
	ev->kind = EVENT_DATA;
	ev->tgid = tgid;
	ev->pid = (__u32)id;
	ev->fd = fd;
	ev->generation = conn->generation;
	ev->direction = direction;
	ev->size = ret;
	ev->syscall = nr;
	if (cap > MAX_CAPTURE)
		cap = MAX_CAPTURE;

	if (kind == IO_BUF) {
		n = ret < cap ? ret : cap;
		barrier_var(n);
		if (n > MAX_CAPTURE)
			n = MAX_CAPTURE;
		bpf_probe_read_user(ev->data, n, (void *)buf);
	} else {
		const struct iovec *iov = (const struct iovec *)buf;

		if (kind == IO_MSG) {
			struct user_msghdr msg;

			if (bpf_probe_read_user(&msg, sizeof(msg), (void *)buf))
				return;
			iov = msg.msg_iov;
			iovcnt = msg.msg_iovlen;
		}
		n = copy_iov(s, iov, iovcnt, ret, cap);
	}
	barrier_var(n);
	if (n > MAX_CAPTURE)
		n = MAX_CAPTURE;
	ev->captured = n;
	submit(ev, offsetof(struct data_event, data) + n);
}

/* A call that changed what an fd is: connect (0 or EINPROGRESS) made a client connection,
 * accept a server one; close, dup2/dup3 over an fd and close_range ended whatever was there.
 * Taken at exit, like the rest: the fd arguments are still in the registers, and the
 * connection is over either way (a close that failed still freed its fd: EINTR, EIO). */
static __always_inline void fd_changed(__u64 id, __u32 nr, struct pt_regs *regs, long ret)
{
	const __u64 CLOSE_RANGE_CLOEXEC = 1 << 2; /* only marks them close-on-exec */
	__u32 tgid = id >> 32;
	int fd = (int)regs->di;
	__u64 first, last;

	if (!tgid_traced(tgid))
		return;
	switch (nr) {
	case NR_CONNECT:
		if (fd >= 0 && (ret == 0 || ret == -EINPROGRESS))
			open_conn(tgid, (__u32)id, fd, ROLE_CLIENT, sock_of_fd(fd));
		break;
	case NR_ACCEPT:
	case NR_ACCEPT4:
		if (ret >= 0)
			open_conn(tgid, (__u32)id, (int)ret, ROLE_SERVER, sock_of_fd((int)ret));
		break;
	case NR_CLOSE:
		if (fd >= 0)
			close_conn(tgid, (__u32)id, fd);
		break;
	case NR_DUP2:
	case NR_DUP3: /* the new fd's old file is closed (dup2 onto itself changes nothing) */
		if (ret >= 0 && (int)regs->si >= 0 && regs->si != regs->di)
			close_conn(tgid, (__u32)id, (int)regs->si);
		break;
	case NR_CLOSE_RANGE:
		first = regs->di;
		last = regs->si;
		if (ret >= 0 && !(regs->dx & CLOSE_RANGE_CLOEXEC) && first <= 0x7fffffff)
			sweep(first, last > 0x7fffffff ? 0x7fffffff : last, false);
		break;
	}
}

SEC("tp_btf/sys_exit")
int BPF_PROG(exit_io, struct pt_regs *regs, long ret)
{
	__u32 nr = regs->orig_ax, kind, direction = EGRESS;
	struct task_struct *task;
	__u64 id;

	switch (nr) {
	case NR_READ: kind = IO_BUF; direction = INGRESS; break;
	case NR_WRITE: kind = IO_BUF; break;
	case NR_RECVFROM: kind = IO_BUF; direction = INGRESS; break;
	case NR_SENDTO: kind = IO_BUF; break;
	case NR_READV: kind = IO_IOV; direction = INGRESS; break;
	case NR_WRITEV: kind = IO_IOV; break;
	case NR_RECVMSG: kind = IO_MSG; direction = INGRESS; break;
	case NR_SENDMSG: kind = IO_MSG; break;
	case NR_CONNECT:
	case NR_ACCEPT:
	case NR_ACCEPT4:
	case NR_CLOSE:
	case NR_DUP2:
	case NR_DUP3:
	case NR_CLOSE_RANGE: kind = IO_FD; break;
	default: return 0;
	}
	if (kind != IO_FD && ret <= 0) /* moved nothing */
		return 0;
	task = bpf_get_current_task_btf();
	if (task->thread_info.status & TS_COMPAT)
		return 0;
	id = bpf_get_current_pid_tgid();
	if (kind == IO_FD)
		fd_changed(id, nr, regs, ret);
	else
		capture(id, (int)regs->di, kind, direction, regs->si, regs->dx, ret, nr);
	return 0;
}

SEC("tracepoint/sched/sched_process_exec")
int on_exec(void *ctx)
{
	sweep(0, 0x7fffffff, true); /* close-on-exec sockets are gone, others are adopted again */
	return 0;
}

SEC("tracepoint/sched/sched_process_exit")
int on_exit(void *ctx)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();

	if (BPF_CORE_READ(task, signal, live.counter) != 0)
		return 0; /* other threads of the process live on */
	sweep(0, 0x7fffffff, true);
	return 0;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
