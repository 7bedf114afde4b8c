// The futex system call number on arm64 (include/uapi/asm-generic/unistd.h).

package ring

const sysFutex = 98
