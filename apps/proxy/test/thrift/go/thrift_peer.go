// Go thrift peer for loch's tests and benchmarks (Debian's golang-thrift-dev, Apache Thrift
// 0.17, built offline with GO111MODULE=off and GOPATH=/usr/share/gocode). The IDL it speaks,
// written by hand as the generator would (no thrift compiler is needed):
//
//	exception Oops { 1: string why }
//	service Echo { string <any method>(1: string text) throws (1: Oops oops); oneway void <any>(1: string text) }
//
// Modes:
//
//	server <framed|header> <binary|compact> <name>
//	    answers "<name>:<method>:<text>" (the method as the processor saw it: bare for
//	    "Svc:method" calls, which go through a TMultiplexedProcessor as Apache's do); "bench"
//	    answers the text as sent; "oops" throws the declared Oops{why = text}; "sleep" waits <text> ms first; oneway calls
//	    are printed to stdout as "ONEWAY <text>". Prints its port first.
//	client <port> <framed|header> <binary|compact> <service or -> <method> <text,text,...>
//	    one connection, calls in order through TStandardClient (a TMultiplexedProtocol when a
//	    service is given); prints each result, "OOPS <why>" or "EXCEPTION <type> <message>".
//	oneway <port> <framed|header> <binary|compact> <method> <text>
//	    sends a ONEWAY message, then calls "echo" on the same connection and prints its result.
//	load <port> <framed|header> <binary|compact> <connections> <seconds> <payload bytes>
//	    closed-loop load: each connection calls "bench" with a payload of that size as fast as it
//	    is answered (a reply of another size counts as an error); prints one JSON line {calls, errors, seconds, p50_us, p99_us}.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/apache/thrift/lib/go/thrift"
)

// textArgs is the args struct {1: string text}, and the result struct {0: string success,
// 1: Oops oops} when used as a result.
type textStruct struct {
	text    *string
	oops    *string
	isReply bool
}

func (s *textStruct) Write(ctx context.Context, p thrift.TProtocol) error {
	if err := p.WriteStructBegin(ctx, "s"); err != nil {
		return err
	}
	if s.text != nil {
		id := int16(1)
		if s.isReply {
			id = 0
		}
		p.WriteFieldBegin(ctx, "text", thrift.STRING, id)
		p.WriteString(ctx, *s.text)
		p.WriteFieldEnd(ctx)
	}
	if s.oops != nil {
		p.WriteFieldBegin(ctx, "oops", thrift.STRUCT, 1)
		p.WriteStructBegin(ctx, "Oops")
		p.WriteFieldBegin(ctx, "why", thrift.STRING, 1)
		p.WriteString(ctx, *s.oops)
		p.WriteFieldEnd(ctx)
		p.WriteFieldStop(ctx)
		p.WriteStructEnd(ctx)
		p.WriteFieldEnd(ctx)
	}
	p.WriteFieldStop(ctx)
	return p.WriteStructEnd(ctx)
}

func (s *textStruct) Read(ctx context.Context, p thrift.TProtocol) error {
	if _, err := p.ReadStructBegin(ctx); err != nil {
		return err
	}
	for {
		_, t, id, err := p.ReadFieldBegin(ctx)
		if err != nil {
			return err
		}
		if t == thrift.STOP {
			break
		}
		switch {
		case t == thrift.STRING && (id == 0 || id == 1) && s.text == nil:
			v, err := p.ReadString(ctx)
			if err != nil {
				return err
			}
			s.text = &v
		case t == thrift.STRUCT && id == 1:
			inner := &textStruct{}
			if err := inner.Read(ctx, p); err != nil {
				return err
			}
			s.oops = inner.text
		default:
			if err := p.Skip(ctx, t); err != nil {
				return err
			}
		}
		p.ReadFieldEnd(ctx)
	}
	return p.ReadStructEnd(ctx)
}

func (s *textStruct) String() string { return "textStruct" }

// echo answers any method (see the file comment).
type echo struct {
	name string
	mu   sync.Mutex
}

func (e *echo) Process(ctx context.Context, in, out thrift.TProtocol) (bool, thrift.TException) {
	name, typeID, seqID, err := in.ReadMessageBegin(ctx)
	if err != nil {
		return false, thrift.WrapTException(err)
	}
	args := &textStruct{}
	if err := args.Read(ctx, in); err != nil {
		return false, thrift.WrapTException(err)
	}
	in.ReadMessageEnd(ctx)
	text := ""
	if args.text != nil {
		text = *args.text
	}
	if typeID == thrift.ONEWAY {
		e.mu.Lock()
		fmt.Printf("ONEWAY %s\n", text)
		e.mu.Unlock()
		return true, nil
	}
	if name == "sleep" {
		ms, _ := strconv.Atoi(text)
		time.Sleep(time.Duration(ms) * time.Millisecond)
	}
	result := &textStruct{isReply: true}
	if name == "oops" {
		result.oops = &text
	} else {
		answer := fmt.Sprintf("%s:%s:%s", e.name, name, text)
		if name == "bench" {
			answer = text // the benchmark's payload comes back as sent
		}
		result.text = &answer
	}
	out.WriteMessageBegin(ctx, name, thrift.REPLY, seqID)
	result.Write(ctx, out)
	out.WriteMessageEnd(ctx)
	if err := out.Flush(ctx); err != nil {
		return false, thrift.WrapTException(err)
	}
	return true, nil
}

func (e *echo) ProcessorMap() map[string]thrift.TProcessorFunction  { return nil }
func (e *echo) AddToProcessorMap(string, thrift.TProcessorFunction) {}

func protocolID(protocol string) thrift.THeaderProtocolID {
	if protocol == "compact" {
		return thrift.THeaderProtocolCompact
	}
	return thrift.THeaderProtocolBinary
}

func config(protocol string) *thrift.TConfiguration {
	id := protocolID(protocol)
	return &thrift.TConfiguration{THeaderProtocolID: &id, ConnectTimeout: 5 * time.Second, SocketTimeout: 30 * time.Second}
}

func server(transport, protocol, name string) {
	socket, err := thrift.NewTServerSocket("127.0.0.1:0")
	must(err)
	must(socket.Listen())
	conf := config(protocol)
	var tf thrift.TTransportFactory
	var pf thrift.TProtocolFactory
	if transport == "header" {
		tf = thrift.NewTHeaderTransportFactoryConf(nil, conf)
		pf = thrift.NewTHeaderProtocolFactoryConf(conf)
	} else {
		tf = thrift.NewTFramedTransportFactoryConf(thrift.NewTTransportFactory(), conf)
		if protocol == "compact" {
			pf = thrift.NewTCompactProtocolFactoryConf(conf)
		} else {
			pf = thrift.NewTBinaryProtocolFactoryConf(conf)
		}
	}
	e := &echo{name: name}
	mux := thrift.NewTMultiplexedProcessor()
	mux.RegisterDefault(e)
	for _, svc := range []string{"Calc", "Echo"} {
		mux.RegisterProcessor(svc, e)
	}
	srv := thrift.NewTSimpleServer4(mux, socket, tf, pf)
	srv.SetLogger(func(string) {})
	addr := socket.Addr().String()
	fmt.Println(addr[strings.LastIndex(addr, ":")+1:])
	must(srv.Serve())
}

func dial(port, transport, protocol string) (thrift.TTransport, thrift.TProtocol) {
	conf := config(protocol)
	sock := thrift.NewTSocketConf("127.0.0.1:"+port, conf)
	must(sock.Open())
	if transport == "header" {
		trans := thrift.NewTHeaderTransportConf(sock, conf)
		return trans, thrift.NewTHeaderProtocolConf(trans, conf)
	}
	trans := thrift.NewTFramedTransportConf(sock, conf)
	if protocol == "compact" {
		return trans, thrift.NewTCompactProtocolConf(trans, conf)
	}
	return trans, thrift.NewTBinaryProtocolConf(trans, conf)
}

func call(ctx context.Context, c *thrift.TStandardClient, method, text string) string {
	result := &textStruct{}
	_, err := c.Call(ctx, method, &textStruct{text: &text}, result)
	if err != nil {
		if x, ok := err.(thrift.TApplicationException); ok {
			return fmt.Sprintf("EXCEPTION %d %s", x.TypeId(), x.Error())
		}
		return fmt.Sprintf("ERROR %v", err)
	}
	if result.oops != nil {
		return "OOPS " + *result.oops
	}
	if result.text == nil {
		return "ERROR no result"
	}
	return *result.text
}

func client(port, transport, protocol, service, method, texts string) {
	trans, proto := dial(port, transport, protocol)
	defer trans.Close()
	var out thrift.TProtocol = proto
	if service != "-" {
		out = thrift.NewTMultiplexedProtocol(proto, service)
	}
	c := thrift.NewTStandardClient(proto, out)
	ctx := context.Background()
	for _, text := range strings.Split(texts, ",") {
		fmt.Println(call(ctx, c, method, text))
	}
}

func oneway(port, transport, protocol, method, text string) {
	trans, proto := dial(port, transport, protocol)
	defer trans.Close()
	ctx := context.Background()
	// Apache Go 0.17's TStandardClient sends oneway methods as CALL messages: write a real ONEWAY.
	proto.WriteMessageBegin(ctx, method, thrift.ONEWAY, 1000)
	(&textStruct{text: &text}).Write(ctx, proto)
	proto.WriteMessageEnd(ctx)
	must(proto.Flush(ctx))
	fmt.Println(call(ctx, thrift.NewTStandardClient(proto, proto), "echo", "after"))
}

func load(port, transport, protocol string, conns int, seconds float64, size int) {
	payload := strings.Repeat("x", size)
	deadline := time.Now().Add(time.Duration(seconds * float64(time.Second)))
	var mu sync.Mutex
	var latencies []time.Duration
	errors := 0
	var wg sync.WaitGroup
	start := time.Now()
	for i := 0; i < conns; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			trans, proto := dial(port, transport, protocol)
			defer trans.Close()
			c := thrift.NewTStandardClient(proto, proto)
			ctx := context.Background()
			local := make([]time.Duration, 0, 1<<16)
			bad := 0
			for time.Now().Before(deadline) {
				t0 := time.Now()
				result := &textStruct{}
				if _, err := c.Call(ctx, "bench", &textStruct{text: &payload}, result); err != nil || result.text == nil || len(*result.text) != size {
					bad++
					if err != nil {
						break
					}
					continue
				}
				local = append(local, time.Since(t0))
			}
			mu.Lock()
			latencies = append(latencies, local...)
			errors += bad
			mu.Unlock()
		}()
	}
	wg.Wait()
	elapsed := time.Since(start).Seconds()
	sort.Slice(latencies, func(a, b int) bool { return latencies[a] < latencies[b] })
	pct := func(p float64) float64 {
		if len(latencies) == 0 {
			return 0
		}
		return float64(latencies[int(p*float64(len(latencies)-1))].Microseconds())
	}
	out, _ := json.Marshal(map[string]interface{}{
		"calls": len(latencies), "errors": errors, "seconds": elapsed, "p50_us": pct(0.5), "p99_us": pct(0.99),
	})
	fmt.Println(string(out))
}

func must(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

func main() {
	a := os.Args[1:]
	switch a[0] {
	case "server":
		server(a[1], a[2], a[3])
	case "client":
		client(a[1], a[2], a[3], a[4], a[5], a[6])
	case "oneway":
		oneway(a[1], a[2], a[3], a[4], a[5])
	case "load":
		conns, _ := strconv.Atoi(a[4])
		seconds, _ := strconv.ParseFloat(a[5], 64)
		size, _ := strconv.Atoi(a[6])
		load(a[1], a[2], a[3], conns, seconds, size)
	default:
		must(fmt.Errorf("unknown mode %s", a[0]))
	}
}
