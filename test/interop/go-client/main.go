// A gRPC-Go client for the interop tests. It has no Envoy protos on purpose: the test encodes each
// CheckRequest with Envoy's official schema and this program moves the bytes unchanged, so what is
// proven is that grpc-go's framing, metadata and connection handling work against the server.
//
// Input (stdin, JSON): target, calls [{request (base64), metadata, repeat}], concurrency,
// delay_ms (a worker's pause between two of its calls), timeout_ms.
// Output (stdout, JSON): results [{index, code, message, response (base64)}] in call order, and
// dials: how many TCP connections the channel opened.
package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

const checkMethod = "/envoy.service.auth.v3.Authorization/Check"

type callSpec struct {
	Request  string            `json:"request"`
	Metadata map[string]string `json:"metadata"`
	Repeat   int               `json:"repeat"`
}

type input struct {
	Target      string     `json:"target"`
	Calls       []callSpec `json:"calls"`
	Concurrency int        `json:"concurrency"`
	DelayMs     int        `json:"delay_ms"`
	TimeoutMs   int        `json:"timeout_ms"`
}

type result struct {
	Index    int    `json:"index"`
	Code     int    `json:"code"`
	Message  string `json:"message"`
	Response string `json:"response"`
}

type output struct {
	Stack   string   `json:"stack"`
	Results []result `json:"results"`
	Dials   int64    `json:"dials"`
}

// rawCodec hands the request bytes to the transport as they are and keeps the answer as bytes.
type rawCodec struct{}

func (rawCodec) Marshal(v interface{}) ([]byte, error) {
	b, ok := v.([]byte)
	if !ok {
		return nil, fmt.Errorf("rawCodec: want []byte, got %T", v)
	}
	return b, nil
}

func (rawCodec) Unmarshal(data []byte, v interface{}) error {
	p, ok := v.(*[]byte)
	if !ok {
		return fmt.Errorf("rawCodec: want *[]byte, got %T", v)
	}
	*p = append([]byte(nil), data...)
	return nil
}

func (rawCodec) Name() string { return "raw" }

type job struct {
	index    int
	request  []byte
	metadata map[string]string
}

func fail(format string, args ...interface{}) {
	fmt.Fprintf(os.Stderr, "go-client: "+format+"\n", args...)
	os.Exit(2)
}

func main() {
	var in input
	if err := json.NewDecoder(os.Stdin).Decode(&in); err != nil {
		fail("bad input: %v", err)
	}
	if in.Concurrency < 1 {
		in.Concurrency = 1
	}
	if in.TimeoutMs <= 0 {
		in.TimeoutMs = 10000
	}
	var jobs []job
	for _, c := range in.Calls {
		req, err := base64.StdEncoding.DecodeString(c.Request)
		if err != nil {
			fail("bad request base64: %v", err)
		}
		n := c.Repeat
		if n < 1 {
			n = 1
		}
		for i := 0; i < n; i++ {
			jobs = append(jobs, job{index: len(jobs), request: req, metadata: c.Metadata})
		}
	}

	// Counting dials is how the test sees the channel replace a connection (max connection age).
	var dials int64
	dialer := func(ctx context.Context, addr string) (net.Conn, error) {
		atomic.AddInt64(&dials, 1)
		var d net.Dialer
		return d.DialContext(ctx, "tcp", addr)
	}
	conn, err := grpc.Dial(in.Target,
		grpc.WithInsecure(),
		grpc.WithContextDialer(dialer),
		grpc.WithDefaultCallOptions(grpc.ForceCodec(rawCodec{})),
	)
	if err != nil {
		fail("dial %s: %v", in.Target, err)
	}
	defer conn.Close()

	results := make([]result, len(jobs))
	queue := make(chan job)
	var wg sync.WaitGroup
	for w := 0; w < in.Concurrency; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			first := true
			for j := range queue {
				if !first && in.DelayMs > 0 {
					time.Sleep(time.Duration(in.DelayMs) * time.Millisecond)
				}
				first = false
				results[j.index] = call(conn, j, in.TimeoutMs)
			}
		}()
	}
	for _, j := range jobs {
		queue <- j
	}
	close(queue)
	wg.Wait()

	out := output{Stack: "grpc-go " + grpc.Version, Results: results, Dials: atomic.LoadInt64(&dials)}
	if err := json.NewEncoder(os.Stdout).Encode(out); err != nil {
		fail("write output: %v", err)
	}
}

func call(conn *grpc.ClientConn, j job, timeoutMs int) result {
	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(timeoutMs)*time.Millisecond)
	defer cancel()
	if len(j.metadata) > 0 {
		ctx = metadata.NewOutgoingContext(ctx, metadata.New(j.metadata))
	}
	var reply []byte
	err := conn.Invoke(ctx, checkMethod, j.request, &reply)
	st := status.Convert(err)
	return result{
		Index:    j.index,
		Code:     int(st.Code()),
		Message:  st.Message(),
		Response: base64.StdEncoding.EncodeToString(reply),
	}
}
