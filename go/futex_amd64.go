// The futex system call number on amd64 (arch/x86/entry/syscalls/syscall_64.tbl).

package ring

const sysFutex = 202
