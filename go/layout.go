// Byte layout of Ring's shared memory (spec/wire-format.md, spec/bootstrap.md §3): one named constant
// per field, with the spec's IR_ names in Go case. spec_test.go checks every value against the
// generated C header (rust/core/include/impulse_ring_wire.h), the single source of the layout.

package ring

const (
	controlFingerprint uint64 = 0x6f2c3ff8e4f65122
	specVersion        uint32 = 1
	segMagicValue      uint32 = 0x474E5249
	cacheLine                 = 64

	kindControl uint32 = 1
	kindChannel uint32 = 2
	kindLink    uint32 = 3

	// Segment header (wire-format.md §2.1).
	segMagic        = 0
	segVersion      = 4
	segKind         = 8
	segSize         = 16
	segCreatorPid   = 24
	segCreatorStart = 32
	segHeaderSize   = 64

	// Doorbell (§3), relative to the doorbell.
	doorbellSeq      = 0
	doorbellSleepers = 4

	// SPSC ring header (§4), relative to the ring's base.
	ringTail            = 0
	ringProducerWaiting = 8
	ringHead            = 64
	ringCapacity        = 128
	ringHeaderSize      = 192
	minRingCapacity     = 4096
	maxRingCapacity     = 1 << 30

	// Frames (§5).
	frameLen        = 0
	frameKind       = 4
	frameFlags      = 6
	frameSeq        = 8
	frameHeaderSize = 16
	frameAlign      = 16

	frameKindData        uint16 = 1
	frameKindPadding     uint16 = 2
	frameKindControl     uint16 = 3
	frameKindCallRequest uint16 = 4
	frameKindCallOK      uint16 = 5
	frameKindCallError   uint16 = 6

	// Control segment (bootstrap.md §3).
	ctlBrokerPid      = 64
	ctlMaxApps        = 68
	ctlBrokerStart    = 72
	ctlRingCapacity   = 80
	ctlShuttingDown   = 84
	ctlHeartbeat      = 88
	ctlBrokerDoorbell = 128
	ctlSlots          = 256

	// App slot (bootstrap.md §3.1), relative to the slot.
	slotState       = 0
	slotPid         = 4
	slotStart       = 8
	slotGeneration  = 16
	slotDoorbell    = 64
	slotRequestRing = 256

	slotFree    uint32 = 0
	slotClaimed uint32 = 1
	slotActive  uint32 = 2
	slotClosing uint32 = 3
	slotFenced  uint32 = 4

	maxMaxApps = 4096

	// Channel segment (§7.1).
	chTail           = 64
	chNextSeq        = 72
	chMinValid       = 128
	chDataDoorbell   = 192
	chSpaceDoorbell  = 256
	chClosed         = 320
	chCapacity       = 384
	chChannelID      = 392
	chFingerprint    = 400
	chPolicy         = 408
	chMaxSubscribers = 412
	chSubscribers    = 512

	policyBlock uint32 = 0
	policyLossy uint32 = 1

	maxMaxSubscribers = 4096

	// Subscriber slot (§7.2), relative to the slot.
	subState  = 0
	subOwner  = 4
	subPos    = 8
	subMissed = 16
	subSize   = 64

	subFree     uint32 = 0
	subReserved uint32 = 1
	subActive   uint32 = 2
	subJoining  uint32 = 3
	// An observer (`ring tap`, §7.8): never gates the publisher; this connector does not join as one.
	subObserving uint32 = 4

	// Link segment (§8.1).
	linkLinkID       = 64
	linkFunctionID   = 72
	linkCaller       = 80
	linkProvider     = 84
	linkCallerGone   = 88
	linkProviderGone = 92
	linkRequestFP    = 96
	linkResponseFP   = 104
	linkCalls        = 128
	linkServed       = 192
	linkFailed       = 200
	linkRequestRing  = 256

	soeHeaderLen = 10

	// Broker defaults (what a connector sees, not what it chooses).
	defaultMaxApps             = 64
	defaultControlRingCapacity = 64 * 1024
	defaultMaxSubscribers      = 32
	defaultChannelCapacity     = 1 << 20
	defaultLinkCapacity        = 256 * 1024
)

// controlSlotSize is the size of one app slot whose two rings hold capacity bytes each.
func controlSlotSize(capacity uint64) uint64 { return slotRequestRing + 2*(ringHeaderSize+capacity) }

func controlSegmentSize(maxApps, capacity uint64) uint64 {
	return ctlSlots + maxApps*controlSlotSize(capacity)
}

func channelDataOffset(maxSubscribers uint64) uint64 { return chSubscribers + subSize*maxSubscribers }

func channelSegmentSize(maxSubscribers, capacity uint64) uint64 {
	return channelDataOffset(maxSubscribers) + capacity
}

func linkResponseRing(capacity uint64) uint64 { return linkRequestRing + ringHeaderSize + capacity }

func linkSegmentSize(capacity uint64) uint64 { return linkRequestRing + 2*(ringHeaderSize+capacity) }

// recordSize is the ring space a frame with len payload bytes takes: header, payload, filler to 16.
func recordSize(len uint64) uint64 {
	return (frameHeaderSize + len + frameAlign - 1) &^ (frameAlign - 1)
}

// maxPayload is the largest payload of one frame: a record may take at most half the ring (§4.5).
func maxPayload(capacity uint64) uint64 { return capacity/2 - frameHeaderSize }

// validCapacity says whether c is a power of two from 4096 to 2^30 (§2.2).
func validCapacity(c uint64) bool {
	return c >= minRingCapacity && c <= maxRingCapacity && c&(c-1) == 0
}
