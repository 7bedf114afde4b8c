// Package ring is the Go connector of Ring, a cross-language IPC bus over POSIX shared memory:
// channels (publish/subscribe) and functions (calls), Avro payloads, interface compatibility checked
// by the broker with CRC-64-AVRO fingerprints. It implements spec/ of the Ring repository in pure Go,
// without cgo.
//
// Connect to the broker of a namespace, then publish, subscribe, expose and call:
//
//	conn, err := ring.Connect(ctx, "sensor")
//	pub, err := conn.PublishChannel("readings", schema)
//	sub, err := conn.Subscribe("readings", schema)
//	err = pub.Publish(&Reading{Seq: 1})
//	err = sub.Recv(ctx, &reading)
//	fn, err := conn.ExposeFunction("add", reqSchema, respSchema, handler)
//	err = conn.Call(ctx, "add", &req, &resp, ring.WithSchemas(reqSchema, respSchema))
//
// Every error is a *Error with a Code from the vocabulary all connectors share; match it with
// errors.Is against the sentinels (ErrNoBroker, ErrSchemaMismatch, ErrPeerGone, ...). Waits take a
// context.Context for deadlines and cancellation.
package ring
