// Sealed access keys (spec/bootstrap.md §5.5): the app's X25519 key pair for one registration, the
// session secret it shares with the broker, and the keystream that seals every access key a request
// carries, so that no key is ever in clear in the control segment.

package ring

import (
	"crypto/ecdh"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
)

const (
	publicKeyLen = 32
	sessionLabel = "impulse-ring session v1"
	keyLabel     = "impulse-ring key v1"
)

// session is the secret one registration shares with the broker (§5.5 step 3).
type session [sha256.Size]byte

// newKeyPair makes the app's key pair for one registration: a fresh one every time, never reused.
func newKeyPair() (*ecdh.PrivateKey, error) {
	priv, err := ecdh.X25519().GenerateKey(rand.Reader)
	if err != nil {
		return nil, &Error{Code: CodeIo, Message: "cannot make an X25519 key pair: " + err.Error(), cause: err}
	}
	return priv, nil
}

// openSession derives the session from the app's private key and the public key the broker sent in
// Registered. A key of another length than 32 bytes, or a point of small order (the shared secret is
// all zero), is the broker breaking the protocol: CodeProtocol.
func openSession(appPrivate *ecdh.PrivateKey, brokerPublic []byte) (*session, error) {
	if len(brokerPublic) != publicKeyLen {
		return nil, newError(CodeProtocol, "the broker's public key in Registered is %d bytes, expected %d",
			len(brokerPublic), publicKeyLen)
	}
	peer, err := ecdh.X25519().NewPublicKey(brokerPublic)
	if err != nil {
		return nil, &Error{Code: CodeProtocol, Message: "the broker's public key in Registered is not an X25519 key: " +
			err.Error(), cause: err}
	}
	// crypto/ecdh refuses an all-zero result itself (RFC 7748 §6.1): the only way X25519 fails here.
	shared, err := appPrivate.ECDH(peer)
	if err != nil {
		return nil, &Error{Code: CodeProtocol, Message: "the broker's public key in Registered is a point of small order",
			cause: err}
	}
	mac := hmac.New(sha256.New, shared)
	mac.Write([]byte(sessionLabel))
	mac.Write(appPrivate.PublicKey().Bytes())
	mac.Write(brokerPublic)
	var s session
	mac.Sum(s[:0])
	clear(shared)
	return &s, nil
}

// seal XORs key with the keystream of requestID: block(0) ‖ block(1) ‖ ... cut to the key's length. The
// result is as long as key; sealing it again unseals it. A request id must seal at most one key.
func (s *session) seal(requestID int64, key []byte) []byte {
	out := make([]byte, len(key))
	mac := hmac.New(sha256.New, s[:])
	var msg [len(keyLabel) + 12]byte
	copy(msg[:], keyLabel)
	binary.LittleEndian.PutUint64(msg[len(keyLabel):], uint64(requestID))
	var block [sha256.Size]byte
	for j := 0; j*len(block) < len(key); j++ {
		binary.LittleEndian.PutUint32(msg[len(keyLabel)+8:], uint32(j))
		mac.Reset()
		mac.Write(msg[:])
		mac.Sum(block[:0])
		for i, b := range key[j*len(block) : min(len(key), (j+1)*len(block))] {
			out[j*len(block)+i] = b ^ block[i]
		}
	}
	clear(block[:])
	return out
}

// sealField seals a key field (["null", "bytes"]) for the request requestID: null stays null.
func (s *session) sealField(requestID int64, key *[]byte) *[]byte {
	if key == nil {
		return nil
	}
	sealed := s.seal(requestID, *key)
	return &sealed
}
