// The demo: two apps on one bus. `sensor` publishes readings on a keyed channel and exposes an `add`
// function; `dashboard` subscribes to the readings and calls `add`. Run a broker first (`cargo run -p
// impulsed`), then `go -C go run ./examples/demo`.
package main

import (
	"context"
	"errors"
	"fmt"
	"log"
	"math"
	"time"

	ring "github.com/impulse/ring/go"
)

const (
	readingSchema = `{"type":"record","name":"Reading","namespace":"demo",
  "fields":[{"name":"seq","type":"long"},{"name":"celsius","type":"double"},{"name":"sensor","type":"string"}]}`
	addRequestSchema  = `{"type":"record","name":"AddRequest","namespace":"demo","fields":[{"name":"a","type":"long"},{"name":"b","type":"long"}]}`
	addResponseSchema = `{"type":"record","name":"AddResponse","namespace":"demo","fields":[{"name":"sum","type":"long"}]}`
)

type reading struct {
	Seq     int64   `avro:"seq"`
	Celsius float64 `avro:"celsius"`
	Sensor  string  `avro:"sensor"`
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
	ctx := context.Background()
	sensor, err := ring.Connect(ctx, "sensor")
	if err != nil {
		return err
	}
	defer sensor.Close()
	fmt.Printf("sensor connected as app %d in namespace `%s`\n", sensor.AppID(), sensor.Namespace())
	dashboard, err := ring.Connect(ctx, "dashboard")
	if err != nil {
		return err
	}
	defer dashboard.Close()
	fmt.Printf("dashboard connected as app %d\n", dashboard.AppID())

	publisher, err := sensor.PublishChannel("readings", readingSchema, ring.WithKey("demo-key"))
	if err != nil {
		return err
	}
	fmt.Println("sensor publishes `readings`")
	_, err = sensor.ExposeFunction("add", addRequestSchema, addResponseSchema,
		func(ctx context.Context, req *ring.Request) (any, error) {
			var r addRequest
			if err := req.Decode(&r); err != nil {
				return nil, err
			}
			if (r.B > 0 && r.A > math.MaxInt64-r.B) || (r.B < 0 && r.A < math.MinInt64-r.B) {
				return nil, errors.New("overflow")
			}
			return &addResponse{Sum: r.A + r.B}, nil
		})
	if err != nil {
		return err
	}
	fmt.Println("sensor exposes `add`")

	if _, err := dashboard.Subscribe("readings", readingSchema, ring.WithKey("wrong-key")); err != nil {
		fmt.Printf("dashboard with a wrong key: %v (errors.Is ErrWrongKey: %t)\n", err, errors.Is(err, ring.ErrWrongKey))
	} else {
		return errors.New("dashboard with a wrong key was let in")
	}
	subscriber, err := dashboard.Subscribe("readings", readingSchema, ring.WithKey("demo-key"))
	if err != nil {
		return err
	}
	for seq := int64(0); seq < 5; seq++ {
		if err := publisher.Publish(&reading{Seq: seq, Celsius: 20 + float64(seq)/2, Sensor: "greenhouse"}); err != nil {
			return err
		}
	}
	for i := 0; i < 5; i++ {
		rctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		var r reading
		err := subscriber.Recv(rctx, &r)
		cancel()
		if err != nil {
			return err
		}
		fmt.Printf("dashboard received %+v\n", r)
	}

	schemas := ring.WithSchemas(addRequestSchema, addResponseSchema)
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	var sum addResponse
	if err := dashboard.Call(cctx, "add", &addRequest{A: 40, B: 2}, &sum, schemas); err != nil {
		return err
	}
	fmt.Printf("dashboard called add(40, 2) = %d\n", sum.Sum)
	if err := dashboard.Call(cctx, "add", &addRequest{A: math.MaxInt64, B: 1}, &sum, schemas); err != nil {
		fmt.Printf("dashboard called add(MaxInt64, 1): %v (errors.Is ErrHandlerError: %t)\n", err,
			errors.Is(err, ring.ErrHandlerError))
	} else {
		return errors.New("add(MaxInt64, 1) did not overflow")
	}
	if err := dashboard.Call(cctx, "nope", &addRequest{A: 1, B: 2}, &sum, schemas); err != nil {
		fmt.Printf("dashboard called nope: %v\n", err)
	} else {
		return errors.New("nope answered")
	}

	if err := publisher.Close(); err != nil {
		return err
	}
	rctx, rcancel := context.WithTimeout(ctx, 2*time.Second)
	defer rcancel()
	if err := subscriber.Recv(rctx, &reading{}); errors.Is(err, ring.ErrClosed) {
		fmt.Printf("dashboard after the sensor closed the channel: %v\n", err)
	} else {
		return fmt.Errorf("dashboard after close: %v, expected ErrClosed", err)
	}
	fmt.Println("demo done")
	return nil
}
