// The dashboard: subscribes to the `readings` channel (spec/schemas/examples/sensor_reading.avsc),
// prints each reading, and every fifth reading calls `add` (spec/schemas/examples/add_request.avsc)
// to total the readings it has seen. It waits for the channel and the function to appear and stops
// when its stdin ends or the broker goes. `ringctl dev` runs it beside a Rust sensor and a Python
// `add` provider; alone: run a broker and those apps, then `go -C go run ./examples/dashboard`.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"os"
	"time"

	ring "github.com/impulse/ring/go"
)

const (
	readingSchema = `{"type":"record","name":"SensorReading","namespace":"impulse.ring.examples","fields":[
  {"name":"sensor_id","type":"string"},
  {"name":"kind","type":{"type":"enum","name":"SensorKind","symbols":["TEMPERATURE","HUMIDITY","PRESSURE"]}},
  {"name":"reading","type":["null","double","string"],"default":null},
  {"name":"taken_at_ns","type":"long"}]}`
	addRequestSchema = `{"type":"record","name":"AddRequest","namespace":"impulse.ring.examples",
  "fields":[{"name":"a","type":"long"},{"name":"b","type":"long"}]}`
	addResponseSchema = `{"type":"record","name":"AddResponse","namespace":"impulse.ring.examples",
  "fields":[{"name":"sum","type":"long"}]}`
)

type sensorReading struct {
	SensorID  string `avro:"sensor_id"`
	Kind      string `avro:"kind"`
	Reading   any    `avro:"reading"`
	TakenAtNs int64  `avro:"taken_at_ns"`
}

type addRequest struct {
	A int64 `avro:"a"`
	B int64 `avro:"b"`
}

type addResponse struct {
	Sum int64 `avro:"sum"`
}

func main() {
	if err := run(); err != nil {
		log.Fatal(err)
	}
}

func run() error {
	// Stops when stdin ends: `ringctl dev` closes it to stop the dashboard cleanly.
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	go func() {
		_, _ = io.Copy(io.Discard, os.Stdin)
		stop()
	}()
	conn, err := ring.Connect(ctx, "dashboard")
	if err != nil {
		return err
	}
	defer conn.Close()
	subscriber, err := subscribe(ctx, conn)
	if err != nil {
		return ignoreStop(ctx, err)
	}
	defer func() {
		if subscriber != nil {
			subscriber.Close()
		}
	}()
	fmt.Println("dashboard subscribed to `readings`")
	schemas := ring.WithSchemas(addRequestSchema, addResponseSchema)
	var seen, total int64
	for ctx.Err() == nil && !conn.BrokerGone() {
		rctx, cancel := context.WithTimeout(ctx, time.Second)
		var r sensorReading
		err := subscriber.Recv(rctx, &r)
		cancel()
		switch {
		case errors.Is(err, ring.ErrTimeout) || errors.Is(err, context.DeadlineExceeded) || ctx.Err() != nil:
			continue
		case errors.Is(err, ring.ErrLagged):
			fmt.Printf("dashboard: %v\n", err)
			continue
		case errors.Is(err, ring.ErrClosed):
			// The sensor stopped; wait for it to publish again.
			fmt.Println("dashboard: the sensor closed `readings`; waiting for it to come back")
			subscriber.Close()
			if subscriber, err = subscribe(ctx, conn); err != nil {
				return ignoreStop(ctx, err)
			}
			continue
		case err != nil:
			return err
		}
		seen++
		value := "failed"
		if v, ok := r.Reading.(float64); ok {
			value = fmt.Sprintf("%.2f", v)
		}
		fmt.Printf("dashboard: %-13s %-11s %s\n", r.SensorID, r.Kind, value)
		if seen%5 == 0 {
			cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			var sum addResponse
			err := conn.Call(cctx, "add", &addRequest{A: total, B: 5}, &sum, schemas)
			cancel()
			if err != nil {
				fmt.Printf("dashboard: add is not answering (%v)\n", err)
				continue
			}
			total = sum.Sum
			fmt.Printf("dashboard: add says %d readings so far\n", total)
		}
	}
	return nil
}

// subscribe waits until the sensor has published `readings`.
func subscribe(ctx context.Context, conn *ring.Conn) (*ring.Subscriber, error) {
	for {
		subscriber, err := conn.Subscribe("readings", readingSchema)
		if !errors.Is(err, ring.ErrUnknownChannel) {
			return subscriber, err
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// ignoreStop is nil when err comes from being stopped (stdin ended), else err.
func ignoreStop(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return nil
	}
	return err
}
