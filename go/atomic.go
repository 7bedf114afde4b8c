// Small atomic helpers over shared words.

package ring

import "sync/atomic"

func atomicCAS32(w *uint32, old, new uint32) bool { return atomic.CompareAndSwapUint32(w, old, new) }
