// Command tlspeer is a TLS client and server for tlssniff's integration tests.
//
// It is written in Go because Go programs do not use libssl: crypto/tls is compiled into
// the executable, so tlssniff has to find Go's TLS code itself (with or without symbols,
// hence the tests also build it with -ldflags='-s -w'). Every mode prints JSON lines on
// stdout so that a test can compare what tlssniff captured with what was really sent and
// received (byte counts, SHA-256 and, with -dump, the bytes themselves).
//
// It must build with Go 1.15 and newer, standard library only, without modules: so no
// generics, no "any", and io/ioutil instead of io.ReadAll / os.ReadFile.
//
// Modes (run "tlspeer MODE -h" for the flags):
//
//	server       echo-transform protocol (below) on each TLS connection
//	client       drives the echo-transform protocol, verifies every response
//	http-server  net/http over TLS, HTTP/1.1 or (-h2) HTTP/2
//	http-client  GET /hello and POST /echo rounds against http-server
//	once         one connection: send a message, half-close, print the reply
//	duplex-server, duplex-client
//	             each connection read and written at once by two goroutines (below)
//
// The echo-transform protocol: the client sends a 12-byte header ("TSP1", u32 request
// length L, u32 response length M, big endian) and L bytes of body; the server answers M
// bytes where byte i is byte(i*7+3) XOR key, key being the first byte of the connection's
// first request body (0 if that body is empty). A "TSPQ" header ends the connection. A
// connection whose first 4 bytes are neither magic is answered "echo:" + everything the
// client sent before half-closing (the once mode).
//
// The duplex modes: after the handshake each side starts a reading and a writing goroutine;
// both first write nothing at the same instant (two threads' first calls on the connection
// race, as an HTTP/2 server's reading and writing goroutines' do), then the writer sends
// -writes messages of -size bytes and half-closes and the reader reads to EOF. Each
// connection prints the bytes both ways.
package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"hash"
	"io"
	"io/ioutil"
	"log"
	"math/big"
	mrand "math/rand"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// ioTimeout bounds every wait (connect, handshake, one request/response, -wait-file) so
// that a broken test fails instead of hanging forever.
const ioTimeout = 60 * time.Second

const headerLen = 12

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	modes := map[string]func([]string){
		"server":        runServer,
		"client":        runClient,
		"http-server":   runHTTPServer,
		"http-client":   runHTTPClient,
		"once":          runOnce,
		"duplex-server": runDuplexServer,
		"duplex-client": runDuplexClient,
	}
	run, ok := modes[os.Args[1]]
	if !ok {
		usage()
	}
	run(os.Args[2:])
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: tlspeer server|client|http-server|http-client|once|duplex-server|duplex-client [flags]")
	os.Exit(1)
}

// ---------------------------------------------------------------- output and exits

// outMu serializes stdout so that concurrent connections never interleave JSON lines,
// and is held by exit so that the process never dies in the middle of a line.
var outMu sync.Mutex

// emit prints one JSON object as one line. os.Stdout is unbuffered: one write per line.
func emit(v interface{}) {
	b, err := json.Marshal(v)
	if err != nil {
		fatalf("json: %v", err)
	}
	outMu.Lock()
	defer outMu.Unlock()
	os.Stdout.Write(append(b, '\n'))
}

func warnf(format string, args ...interface{}) {
	fmt.Fprintf(os.Stderr, "tlspeer: "+format+"\n", args...)
}

func fatalf(format string, args ...interface{}) {
	warnf(format, args...)
	exit(1)
}

func exit(code int) {
	outMu.Lock() // never released: no other line starts
	os.Exit(code)
}

// exitOnSignal makes SIGTERM/SIGINT a normal end for the servers (the tests stop them
// that way), with status() as the exit status.
func exitOnSignal(status func() int) {
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, syscall.SIGTERM, os.Interrupt)
	go func() {
		<-ch
		exit(status())
	}()
}

// parseFlags parses a mode's flags; errors exit 1 like every other error.
func parseFlags(fs *flag.FlagSet, args []string) {
	if err := fs.Parse(args); err != nil {
		if err == flag.ErrHelp {
			os.Exit(0)
		}
		os.Exit(1)
	}
	if fs.NArg() > 0 {
		fatalf("%s: unexpected arguments %q", fs.Name(), fs.Args())
	}
}

type listeningEvent struct {
	Event string `json:"event"`
	Port  int    `json:"port"`
}

func port(a net.Addr) int {
	if t, ok := a.(*net.TCPAddr); ok {
		return t.Port
	}
	return 0
}

// ---------------------------------------------------------------- TLS plumbing

// serverTLSConfig holds a self-signed P-256 certificate made in memory, so the tests
// need no certificate files (clients skip verification).
func serverTLSConfig(h2 bool) *tls.Config {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		fatalf("generating key: %v", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: "tlspeer"},
		DNSNames:     []string{"localhost"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		fatalf("creating certificate: %v", err)
	}
	cfg := &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}}
	if h2 {
		cfg.NextProtos = []string{"h2", "http/1.1"}
	}
	return cfg
}

func dialTLS(addr string, cfg *tls.Config) (*tls.Conn, error) {
	// The dialer's timeout covers the TCP connect and the TLS handshake.
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: ioTimeout}, "tcp", addr, cfg)
	if err != nil {
		return nil, fmt.Errorf("connecting to %s (TCP and TLS handshake): %v", addr, err)
	}
	return c, nil
}

// tap records one direction of a connection: byte count, SHA-256 and, with -dump, a file
// holding the bytes.
type tap struct {
	n    int64
	h    hash.Hash
	file *os.File
	err  error // first error writing file
}

func newTap(path string) (*tap, error) {
	t := &tap{h: sha256.New()}
	if path != "" {
		f, err := os.Create(path)
		if err != nil {
			return nil, err
		}
		t.file = f
	}
	return t, nil
}

func (t *tap) record(p []byte) {
	t.n += int64(len(p))
	t.h.Write(p)
	if t.file != nil && t.err == nil {
		_, t.err = t.file.Write(p)
	}
}

func (t *tap) close() error {
	if t.file != nil {
		if err := t.file.Close(); t.err == nil {
			t.err = err
		}
	}
	return t.err
}

func (t *tap) sum() string { return hex.EncodeToString(t.h.Sum(nil)) }

// openTaps makes the received and sent taps of a connection; with dir != "" they also
// write dir/<prefix>-received.bin and dir/<prefix>-sent.bin.
func openTaps(dir, prefix string) (in, out *tap, err error) {
	inPath, outPath := "", ""
	if dir != "" {
		inPath = filepath.Join(dir, prefix+"-received.bin")
		outPath = filepath.Join(dir, prefix+"-sent.bin")
	}
	if in, err = newTap(inPath); err != nil {
		return nil, nil, err
	}
	if out, err = newTap(outPath); err != nil {
		in.close()
		return nil, nil, err
	}
	return in, out, nil
}

// recConn is a TLS connection that records the plaintext it reads and writes: exactly
// what tlssniff is expected to capture.
type recConn struct {
	*tls.Conn
	in, out *tap
}

func (c *recConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.in.record(p[:n])
	return n, err
}

func (c *recConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	c.out.record(p[:n])
	return n, err
}

// closeAll closes the connection (sending close_notify) and the taps; the first error wins.
func (c *recConn) closeAll(err error) error {
	c.Conn.Close() // the exchange is over; a failing close_notify is not the test's concern
	if e := c.in.close(); err == nil {
		err = e
	}
	if e := c.out.close(); err == nil {
		err = e
	}
	return err
}

// responseByte is byte i of every echo-transform response on a connection with key.
func responseByte(i int64, key byte) byte { return byte(i*7+3) ^ key }

// ---------------------------------------------------------------- server

type serverConnEvent struct {
	Event          string `json:"event"`
	LocalPort      int    `json:"local_port"`
	RemotePort     int    `json:"remote_port"`
	ReceivedSHA256 string `json:"received_sha256"`
	SentSHA256     string `json:"sent_sha256"`
	Received       int64  `json:"received"`
	Sent           int64  `json:"sent"`
}

func runServer(args []string) {
	fs := flag.NewFlagSet("server", flag.ContinueOnError)
	listen := fs.String("listen", "127.0.0.1:0", "address to listen on")
	h2 := fs.Bool("h2", false, "offer ALPN h2,http/1.1 (the protocol spoken stays echo-transform)")
	exitAfter := fs.Int("exit-after", 0, "exit after this many connections have ended (0: run until SIGTERM)")
	dump := fs.String("dump", "", "write each connection's bytes to DIR/server-<remote port>-{received,sent}.bin")
	parseFlags(fs, args)

	cfg := serverTLSConfig(*h2)
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		fatalf("listen: %v", err)
	}
	var mu sync.Mutex
	ended, failed := 0, false
	status := func() int { // exit status: 1 once any connection failed
		if failed {
			return 1
		}
		return 0
	}
	exitOnSignal(func() int { mu.Lock(); defer mu.Unlock(); return status() })
	emit(listeningEvent{"listening", port(ln.Addr())})

	for {
		raw, err := ln.Accept()
		if err != nil {
			fatalf("accept: %v", err)
		}
		go func() {
			ev, err := serveConn(raw, cfg, *dump)
			if err != nil {
				warnf("server: connection from %v: %v", raw.RemoteAddr(), err)
			} else {
				emit(ev)
			}
			mu.Lock()
			defer mu.Unlock()
			ended++
			failed = failed || err != nil
			if *exitAfter > 0 && ended >= *exitAfter {
				exit(status())
			}
		}()
	}
}

func serveConn(raw net.Conn, cfg *tls.Config, dumpDir string) (serverConnEvent, error) {
	in, out, err := openTaps(dumpDir, fmt.Sprintf("server-%d", port(raw.RemoteAddr())))
	if err != nil {
		raw.Close()
		return serverConnEvent{}, err
	}
	c := &recConn{Conn: tls.Server(raw, cfg), in: in, out: out}
	err = c.closeAll(serveEchoTransform(c))
	return serverConnEvent{
		Event:          "server_conn",
		LocalPort:      port(raw.LocalAddr()),
		RemotePort:     port(raw.RemoteAddr()),
		ReceivedSHA256: in.sum(),
		SentSHA256:     out.sum(),
		Received:       in.n,
		Sent:           out.n,
	}, err
}

func serveEchoTransform(c *recConn) error {
	hdr := make([]byte, headerLen)
	buf := make([]byte, 64<<10)
	var key byte
	for first := true; ; first = false {
		// One deadline per request: a slow test is fine, a stuck one is not.
		c.SetDeadline(time.Now().Add(ioTimeout))
		n, err := io.ReadFull(c, hdr[:4])
		if err == io.EOF {
			return nil // the client closed between requests without "TSPQ": fine too
		}
		magic := string(hdr[:n])
		if first && (err == io.ErrUnexpectedEOF || err == nil && magic != "TSP1" && magic != "TSPQ") {
			return serveEcho(c, hdr[:n])
		}
		if err != nil {
			return fmt.Errorf("reading header: %v", err)
		}
		if _, err := io.ReadFull(c, hdr[4:]); err != nil {
			return fmt.Errorf("reading header: %v", err)
		}
		switch magic {
		case "TSPQ":
			return nil
		case "TSP1":
		default:
			return fmt.Errorf("bad magic %q", magic)
		}
		reqLen := int64(binary.BigEndian.Uint32(hdr[4:8]))
		respLen := int64(binary.BigEndian.Uint32(hdr[8:12]))

		// The body is read in chunks so that a large L needs no large buffer.
		for done := int64(0); done < reqLen; {
			chunk := buf
			if reqLen-done < int64(len(chunk)) {
				chunk = buf[:reqLen-done]
			}
			if _, err := io.ReadFull(c, chunk); err != nil {
				return fmt.Errorf("reading %d-byte body at %d: %v", reqLen, done, err)
			}
			if first && done == 0 {
				key = chunk[0]
			}
			done += int64(len(chunk))
		}
		for done := int64(0); done < respLen; {
			chunk := buf
			if respLen-done < int64(len(chunk)) {
				chunk = buf[:respLen-done]
			}
			for i := range chunk {
				chunk[i] = responseByte(done+int64(i), key)
			}
			if _, err := c.Write(chunk); err != nil {
				return fmt.Errorf("writing %d-byte response at %d: %v", respLen, done, err)
			}
			done += int64(len(chunk))
		}
	}
}

// serveEcho answers the once mode: "echo:" + all the client sent until it half-closed.
func serveEcho(c *recConn, prefix []byte) error {
	rest, err := ioutil.ReadAll(c)
	if err != nil {
		return fmt.Errorf("echo: reading: %v", err)
	}
	reply := append([]byte("echo:"), prefix...)
	if _, err := c.Write(append(reply, rest...)); err != nil {
		return fmt.Errorf("echo: writing: %v", err)
	}
	return nil
}

// ---------------------------------------------------------------- client

type clientConnEvent struct {
	Event          string `json:"event"`
	Index          int    `json:"index"`
	LocalPort      int    `json:"local_port"`
	RemotePort     int    `json:"remote_port"`
	SentSHA256     string `json:"sent_sha256"`
	ReceivedSHA256 string `json:"received_sha256"`
	Sent           int64  `json:"sent"`
	Received       int64  `json:"received"`
}

type clientOpts struct {
	addr    string
	sizes   []int
	seed    int64
	delay   time.Duration
	dumpDir string
}

func runClient(args []string) {
	fs := flag.NewFlagSet("client", flag.ContinueOnError)
	connect := fs.String("connect", "", "server address HOST:PORT")
	sizesFlag := fs.String("sizes", "1,100,65536,1048576", "comma-separated request (= response) sizes, one request each")
	conns := fs.Int("conns", 1, "number of connections")
	parallel := fs.Int("parallel", 1, "connections running at a time")
	seed := fs.Int64("seed", 1, "seed of the request bodies")
	dump := fs.String("dump", "", "write each connection's bytes to DIR/client-<index>-{sent,received}.bin")
	waitFile := fs.String("wait-file", "", "wait until this file exists before connecting")
	delayMs := fs.Int("delay-ms", 0, "sleep between requests, in ms")
	parseFlags(fs, args)
	if *connect == "" {
		fatalf("client: -connect is required")
	}
	if *conns < 0 || *parallel < 1 || *delayMs < 0 {
		fatalf("client: need -conns >= 0, -parallel >= 1, -delay-ms >= 0")
	}
	opts := clientOpts{addr: *connect, seed: *seed, delay: time.Duration(*delayMs) * time.Millisecond, dumpDir: *dump}
	for _, s := range strings.Split(*sizesFlag, ",") {
		n, err := strconv.ParseUint(strings.TrimSpace(s), 10, 32)
		if err != nil {
			fatalf("client: bad size %q in -sizes", s)
		}
		opts.sizes = append(opts.sizes, int(n))
	}
	if *waitFile != "" {
		waitForFile(*waitFile)
	}

	exit(runConns("client", *conns, *parallel, func(i int) (interface{}, error) {
		return clientConn(i, opts)
	}))
}

// runConns runs conn(0) .. conn(n-1), parallel at a time, and prints each one's event; the
// exit status: 1 once any failed.
func runConns(mode string, n, parallel int, conn func(i int) (interface{}, error)) int {
	var wg sync.WaitGroup
	var failed int32
	slots := make(chan struct{}, parallel)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			slots <- struct{}{}
			defer func() { <-slots }()
			ev, err := conn(i)
			if err != nil {
				warnf("%s: connection %d: %v", mode, i, err)
				atomic.StoreInt32(&failed, 1)
				return
			}
			emit(ev)
		}(i)
	}
	wg.Wait()
	return int(atomic.LoadInt32(&failed))
}

// waitForFile lets the test attach tlssniff before any TLS happens.
func waitForFile(path string) {
	for end := time.Now().Add(ioTimeout); ; time.Sleep(10 * time.Millisecond) {
		if _, err := os.Stat(path); err == nil {
			return
		}
		if time.Now().After(end) {
			fatalf("client: %s did not appear within %v", path, ioTimeout)
		}
	}
}

func clientConn(idx int, o clientOpts) (clientConnEvent, error) {
	in, out, err := openTaps(o.dumpDir, fmt.Sprintf("client-%d", idx))
	if err != nil {
		return clientConnEvent{}, err
	}
	tc, err := dialTLS(o.addr, &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		in.close()
		out.close()
		return clientConnEvent{}, err
	}
	c := &recConn{Conn: tc, in: in, out: out}
	err = c.closeAll(clientExchange(c, idx, o))
	return clientConnEvent{
		Event:          "client_conn",
		Index:          idx,
		LocalPort:      port(tc.LocalAddr()),
		RemotePort:     port(tc.RemoteAddr()),
		SentSHA256:     out.sum(),
		ReceivedSHA256: in.sum(),
		Sent:           out.n,
		Received:       in.n,
	}, err
}

// bodySeed gives every (seed, connection, request) its own request body.
func bodySeed(seed int64, conn, req int) int64 {
	return (seed*1000003+int64(conn))*1000003 + int64(req)
}

func clientExchange(c *recConn, idx int, o clientOpts) error {
	hdr := make([]byte, headerLen)
	var key byte
	for r, size := range o.sizes {
		if r > 0 && o.delay > 0 {
			time.Sleep(o.delay)
		}
		c.SetDeadline(time.Now().Add(ioTimeout))
		body := make([]byte, size)
		mrand.New(mrand.NewSource(bodySeed(o.seed, idx, r))).Read(body)
		if r == 0 && size > 0 {
			key = body[0]
		}
		copy(hdr, "TSP1")
		binary.BigEndian.PutUint32(hdr[4:8], uint32(size))
		binary.BigEndian.PutUint32(hdr[8:12], uint32(size))
		// Header and body go in separate Write calls, and bodies over 16 KiB in two
		// unequal ones, so that tlssniff has to join several writes into one message.
		writes := [][]byte{hdr, body}
		if size > 16<<10 {
			writes = [][]byte{hdr, body[:size/3], body[size/3:]}
		}
		for _, w := range writes {
			if len(w) == 0 {
				continue // an empty body is no write at all
			}
			if _, err := c.Write(w); err != nil {
				return fmt.Errorf("request %d: write: %v", r, err)
			}
		}
		// The whole response is read before the next request is written.
		resp := make([]byte, size)
		if _, err := io.ReadFull(c, resp); err != nil {
			return fmt.Errorf("request %d: reading %d-byte response: %v", r, size, err)
		}
		for i, b := range resp {
			if want := responseByte(int64(i), key); b != want {
				return fmt.Errorf("request %d: response byte %d is %#x, want %#x", r, i, b, want)
			}
		}
	}
	c.SetDeadline(time.Now().Add(ioTimeout))
	quit := make([]byte, headerLen)
	copy(quit, "TSPQ")
	if _, err := c.Write(quit); err != nil {
		return fmt.Errorf("writing quit: %v", err)
	}
	// Wait for the server's close: when we report, the server has read all we sent.
	extra, err := ioutil.ReadAll(c)
	if err != nil {
		return fmt.Errorf("waiting for the server to close: %v", err)
	}
	if len(extra) > 0 {
		return fmt.Errorf("%d unexpected bytes after quit", len(extra))
	}
	return nil
}

// ---------------------------------------------------------------- once

type onceEvent struct {
	Event     string `json:"event"`
	LocalPort int    `json:"local_port"`
	Received  string `json:"received"`
}

func runOnce(args []string) {
	fs := flag.NewFlagSet("once", flag.ContinueOnError)
	connect := fs.String("connect", "", "server address HOST:PORT")
	message := fs.String("message", "", "text to send")
	tcpHalf := fs.Bool("tcp-half-close", false, "also end the TCP connection's sending side "+
		"(a FIN) after the close_notify, as a client that half-closes its socket does")
	readAfter := fs.Duration("read-after", 0, "wait this long before reading the reply")
	parseFlags(fs, args)
	if *connect == "" {
		fatalf("once: -connect is required")
	}
	raw, err := net.DialTimeout("tcp", *connect, ioTimeout)
	if err != nil {
		fatalf("once: connecting to %s: %v", *connect, err)
	}
	c := tls.Client(raw, &tls.Config{InsecureSkipVerify: true})
	c.SetDeadline(time.Now().Add(ioTimeout))
	if err := c.Handshake(); err != nil {
		fatalf("once: TLS handshake: %v", err)
	}
	if _, err := io.WriteString(c, *message); err != nil {
		fatalf("once: write: %v", err)
	}
	// Half-close (close_notify) tells the server the message is complete.
	if err := c.CloseWrite(); err != nil {
		fatalf("once: close write: %v", err)
	}
	if *tcpHalf {
		if err := raw.(*net.TCPConn).CloseWrite(); err != nil {
			fatalf("once: TCP close write: %v", err)
		}
	}
	// With the FIN sent, the server's reply and FIN arriving meanwhile end the TCP connection
	// in the kernel (TIME_WAIT, the socket closed) before the reply is read from it.
	time.Sleep(*readAfter)
	reply, err := ioutil.ReadAll(c)
	if err != nil {
		fatalf("once: read: %v", err)
	}
	c.Close()
	emit(onceEvent{"once", port(c.LocalAddr()), string(reply)})
}

// ---------------------------------------------------------------- duplex

type duplexEvent struct {
	Event      string `json:"event"`
	LocalPort  int    `json:"local_port"`
	RemotePort int    `json:"remote_port"`
	Sent       string `json:"sent"`     // hex
	Received   string `json:"received"` // hex
}

// duplex reads and writes a handshaken c from two goroutines (see the package comment). The
// bytes of message i are byte(j*13+i) ^ tag, the first message starting with tag and id in
// 7 digits. With skew < 0 both goroutines first write
// nothing at the same instant. With skew >= 0 (the server) the peer's first message is left
// time to arrive, then the reader's first Read (which finds it waiting) races a Write of
// nothing that the writer makes after spinning skew steps: Read reaches its copy to the
// caller, where tlssniff learns the socket and captures, a few microseconds after its entry,
// and varying skew over connections puts the two threads' calls at every offset in that range.
func duplex(c *tls.Conn, id, writes, size int, tag byte, skew int) (duplexEvent, error) {
	var sent, received []byte
	var werr, rerr error
	var wg sync.WaitGroup
	var ready, sink int32
	// Each goroutine spins until the other runs (a channel would wake them microseconds apart).
	together := func(writer bool) {
		atomic.AddInt32(&ready, 1)
		for atomic.LoadInt32(&ready) < 2 {
		}
		if skew < 0 || writer {
			for i := 0; i < skew; i++ {
				atomic.AddInt32(&sink, 1)
			}
			c.Write(nil)
		}
	}
	if skew >= 0 {
		time.Sleep(time.Millisecond)
	}
	c.SetDeadline(time.Now().Add(ioTimeout))
	wg.Add(2)
	go func() {
		defer wg.Done()
		together(true)
		for i := 0; i < writes && werr == nil; i++ {
			msg := make([]byte, size)
			for j := range msg {
				msg[j] = byte(j*13+i) ^ tag
			}
			if i == 0 {
				copy(msg, fmt.Sprintf("%c%07d", tag, id)) // no two connections alike
			}
			var n int
			n, werr = c.Write(msg)
			sent = append(sent, msg[:n]...)
		}
		if werr == nil {
			werr = c.CloseWrite()
		}
	}()
	go func() {
		defer wg.Done()
		together(false)
		buf := make([]byte, 16384)
		for {
			n, err := c.Read(buf)
			received = append(received, buf[:n]...)
			if err == io.EOF {
				return
			}
			if err != nil {
				rerr = err
				return
			}
		}
	}()
	wg.Wait()
	c.Close()
	ev := duplexEvent{"duplex_conn", port(c.LocalAddr()), port(c.RemoteAddr()),
		hex.EncodeToString(sent), hex.EncodeToString(received)}
	if werr != nil {
		return ev, fmt.Errorf("write: %v", werr)
	}
	if rerr != nil {
		return ev, fmt.Errorf("read: %v", rerr)
	}
	return ev, nil
}

func duplexFlags(fs *flag.FlagSet) (writes, size *int) {
	writes = fs.Int("writes", 20, "messages each side writes per connection")
	size = fs.Int("size", 100, "bytes per message")
	return
}

func runDuplexServer(args []string) {
	fs := flag.NewFlagSet("duplex-server", flag.ContinueOnError)
	listen := fs.String("listen", "127.0.0.1:0", "address to listen on")
	writes, size := duplexFlags(fs)
	parseFlags(fs, args)

	cfg := serverTLSConfig(false)
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		fatalf("listen: %v", err)
	}
	var failed int32
	exitOnSignal(func() int { return int(atomic.LoadInt32(&failed)) })
	emit(listeningEvent{"listening", port(ln.Addr())})
	for n := 0; ; n++ {
		raw, err := ln.Accept()
		if err != nil {
			fatalf("accept: %v", err)
		}
		id, skew := n, n*37%200*10 // skew: 0 to 1990 steps, about 0 to 15 us, in 200 stages
		go func() {
			c := tls.Server(raw, cfg)
			c.SetDeadline(time.Now().Add(ioTimeout))
			err := c.Handshake()
			var ev duplexEvent
			if err == nil {
				ev, err = duplex(c, id, *writes, *size, 'S', skew)
			}
			if err != nil {
				warnf("duplex-server: connection from %v: %v", raw.RemoteAddr(), err)
				raw.Close()
				atomic.StoreInt32(&failed, 1)
				return
			}
			emit(ev)
		}()
	}
}

func runDuplexClient(args []string) {
	fs := flag.NewFlagSet("duplex-client", flag.ContinueOnError)
	connect := fs.String("connect", "", "server address HOST:PORT")
	conns := fs.Int("conns", 1, "number of connections")
	parallel := fs.Int("parallel", 1, "connections running at a time")
	writes, size := duplexFlags(fs)
	parseFlags(fs, args)
	if *connect == "" || *conns < 0 || *parallel < 1 || *writes < 0 || *size < 1 {
		fatalf("duplex-client: need -connect, -conns >= 0, -parallel >= 1, -writes >= 0, -size >= 1")
	}
	exit(runConns("duplex-client", *conns, *parallel, func(i int) (interface{}, error) {
		c, err := dialTLS(*connect, &tls.Config{InsecureSkipVerify: true})
		if err != nil {
			return nil, err
		}
		return duplex(c, i, *writes, *size, 'C', -1)
	}))
}

// ---------------------------------------------------------------- HTTP

func runHTTPServer(args []string) {
	fs := flag.NewFlagSet("http-server", flag.ContinueOnError)
	listen := fs.String("listen", "127.0.0.1:0", "address to listen on")
	h2 := fs.Bool("h2", false, "offer HTTP/2 (ALPN h2) besides HTTP/1.1")
	parseFlags(fs, args)

	mux := http.NewServeMux()
	mux.HandleFunc("/hello", func(w http.ResponseWriter, r *http.Request) {
		if r.Method != "GET" {
			http.Error(w, "GET only", http.StatusMethodNotAllowed)
			return
		}
		w.Header().Set("Content-Type", "text/plain")
		io.WriteString(w, "hello from go\n")
	})
	mux.HandleFunc("/echo", func(w http.ResponseWriter, r *http.Request) {
		if r.Method != "POST" {
			http.Error(w, "POST only", http.StatusMethodNotAllowed)
			return
		}
		body, err := ioutil.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Write(body)
	})
	srv := &http.Server{
		Handler:      mux,
		TLSConfig:    serverTLSConfig(*h2),
		ReadTimeout:  ioTimeout,
		WriteTimeout: ioTimeout,
		IdleTimeout:  ioTimeout,
		ErrorLog:     log.New(os.Stderr, "tlspeer: http-server: ", 0),
	}
	if !*h2 {
		// ServeTLS turns on the built-in HTTP/2 only while TLSNextProto is nil.
		srv.TLSNextProto = map[string]func(*http.Server, *tls.Conn, http.Handler){}
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		fatalf("listen: %v", err)
	}
	exitOnSignal(func() int { return 0 })
	emit(listeningEvent{"listening", port(ln.Addr())})
	// Empty file names: the certificate comes from TLSConfig.
	fatalf("http-server: %v", srv.ServeTLS(ln, "", ""))
}

type httpEvent struct {
	Event  string `json:"event"`
	Method string `json:"method"`
	Path   string `json:"path"`
	Status int    `json:"status"`
	Proto  string `json:"proto"`
	Body   string `json:"body"`
}

func runHTTPClient(args []string) {
	fs := flag.NewFlagSet("http-client", flag.ContinueOnError)
	base := fs.String("url", "", "server URL, https://127.0.0.1:PORT")
	h2 := fs.Bool("h2", false, "use HTTP/2 (and require it)")
	rounds := fs.Int("n", 3, "rounds of GET /hello + POST /echo")
	parseFlags(fs, args)
	if *base == "" {
		fatalf("http-client: -url is required")
	}
	tr := &http.Transport{
		TLSClientConfig:       &tls.Config{InsecureSkipVerify: true},
		TLSHandshakeTimeout:   ioTimeout,
		ResponseHeaderTimeout: ioTimeout,
		// A custom TLSClientConfig turns HTTP/2 off unless it is forced back on.
		ForceAttemptHTTP2: *h2,
	}
	wantProto := "HTTP/2.0"
	if !*h2 {
		tr.TLSNextProto = map[string]func(string, *tls.Conn) http.RoundTripper{} // HTTP/1.1 for sure
		wantProto = "HTTP/1.1"
	}
	client := &http.Client{Transport: tr, Timeout: ioTimeout}
	url := strings.TrimRight(*base, "/")
	for i := 0; i < *rounds; i++ {
		httpRequest(client, "GET", url, "/hello", "", "hello from go\n", wantProto)
		ping := fmt.Sprintf("ping-%d", i)
		httpRequest(client, "POST", url, "/echo", ping, ping, wantProto)
	}
	// Close the kept-alive connection now, with close_notify, rather than at exit.
	tr.CloseIdleConnections()
}

func httpRequest(client *http.Client, method, url, path, body, wantBody, wantProto string) {
	var rd io.Reader
	if method == "POST" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, url+path, rd)
	if err != nil {
		fatalf("http-client: %v", err)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "text/plain")
	}
	resp, err := client.Do(req)
	if err != nil {
		fatalf("http-client: %s %s: %v", method, path, err)
	}
	got, err := ioutil.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		fatalf("http-client: %s %s: reading body: %v", method, path, err)
	}
	emit(httpEvent{"http", method, path, resp.StatusCode, resp.Proto, string(got)})
	if resp.StatusCode != 200 || resp.Proto != wantProto || string(got) != wantBody {
		fatalf("http-client: %s %s: got %d %s %q, want 200 %s %q",
			method, path, resp.StatusCode, resp.Proto, got, wantProto, wantBody)
	}
}
