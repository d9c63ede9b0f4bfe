/* SPDX-License-Identifier: Apache-2.0 */
/* The records socket_trace.bpf.c writes to its ring buffer. collectors/socket_trace.py mirrors
 * them field by field (and a test checks that mirror against this object's BTF). */
#ifndef PXL_SOCKET_TRACE_H
#define PXL_SOCKET_TRACE_H

/* The most payload bytes one data record can carry; the capture_bytes setting is <= this. */
#define MAX_CAPTURE 4096

enum event_kind {
	EVENT_DATA = 1,  /* struct data_event: bytes a syscall moved */
	EVENT_OPEN = 2,  /* struct conn_event: connect/accept returned, or a socket first seen */
	EVENT_CLOSE = 3, /* struct conn_event: close, close_range, dup2/dup3 over it, exec, exit */
};

/* Bytes one read/write-like syscall moved on a traced socket; only the first `captured`
 * bytes of data[] are in the record (the ring buffer record is cut right after them). */
struct data_event {
	__u64 ts_ns;      /* bpf_ktime_get_ns() at syscall exit */
	__u32 kind;       /* EVENT_DATA */
	__u32 tgid;       /* process */
	__u32 pid;        /* thread */
	__s32 fd;
	__u32 generation; /* which connection on this (tgid, fd): see conn_event */
	__u32 direction;  /* 0 egress (sent by the process), 1 ingress (received) */
	__u64 size;       /* bytes the syscall moved (its return value) */
	__u32 captured;   /* bytes of data[] that follow, <= size and <= capture_bytes */
	__u32 syscall;    /* the syscall's number (x86_64), for debugging */
	__u8 data[MAX_CAPTURE];
};

/* A connection of a process opened or closed. Addresses are in network byte order, IPv4 in
 * the first 4 bytes; ports in host order. */
struct conn_event {
	__u64 ts_ns;
	__u32 kind;       /* EVENT_OPEN or EVENT_CLOSE */
	__u32 tgid;
	__u32 pid;
	__s32 fd;
	__u32 generation; /* a host-wide counter, one per connection opened */
	__u32 role;       /* 0 unknown (socket first seen in a read/write), 1 client, 2 server */
	__u16 family;     /* AF_INET (2) or AF_INET6 (10) */
	__u16 local_port;
	__u16 remote_port;
	__u16 _pad;
	__u8 local_addr[16];
	__u8 remote_addr[16];
	__u64 bytes_sent; /* totals over the connection's life so far */
	__u64 bytes_recv;
};

#endif /* PXL_SOCKET_TRACE_H */
