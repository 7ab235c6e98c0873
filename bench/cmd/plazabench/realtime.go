package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/coder/websocket"
)

// RealtimeResult is one real-time load: how long an event took from its sender to each
// receiver, and what each connection cost the server in resident memory.
type RealtimeResult struct {
	Key, Name string
	Conns     int
	Rate      float64 // messages or updates per second
	Sent      int64   // sent in the measured window
	Expected  int64   // deliveries the window owed: Sent × Conns
	Delivered int64   // of those, delivered before the end
	Cut       int64   // connections the server closed during the window
	LatencyUS struct{ P50, P99, P999, Max int64 }
	PerConn   int64 // bytes of RSS per open connection, idle
	GoalP99   time.Duration
	GoalConn  int64    // bytes
	Skip      string   // why it was not measured
	Profile   *Profile // with -profile always: Plaza's CPU during the measured window
}

// RealtimeRun is when and under which load the real-time loads were measured: with
// -realtime-only they are measured apart from, and merged into, an earlier report.
type RealtimeRun struct {
	Date       time.Time
	Commit     string
	Dirty      bool
	LoadBefore float64 // 1-minute load average before the first load
	LoadAfter  float64
	Loads      []RealtimeResult
}

// Kinds of real-time load: members of a chat room over /ws, SSE subscribers of product
// updates, and graphql-transport-ws subscribers of productChanged on /graphql.
const (
	kindRoom    = "ws"
	kindSSE     = "sse"
	kindGraphQL = "graphql"
)

// The targets of issue 13; the GraphQL fan-out (issue 14) has no goal yet, only a figure.
var realtimeLoads = []struct {
	key, name string
	kind      string
	conns     int
	rate      float64
	goalP99   time.Duration
	goalConn  int64
}{
	{"ws-1k", "WebSocket room, 1,000 members, 20 messages/s", kindRoom, 1000, 20, 25 * time.Millisecond, 0},
	{"ws-10k", "WebSocket room, 10,000 members, 5 messages/s", kindRoom, 10_000, 5, 150 * time.Millisecond, 12 << 10},
	{"sse-5k", "SSE, 5,000 subscribers, 5 product updates/s", kindSSE, 5000, 5, 100 * time.Millisecond, 16 << 10},
	{"gql-1k", "GraphQL productChanged, 1,000 subscribers, 5 product updates/s", kindGraphQL, 1000, 5, 0, 0},
}

// Real-time timings: members connect, idle for the memory reading, then the load runs a
// warm-up and a measured window, and stragglers get a moment before the count.
const (
	rtIdle     = 3 * time.Second
	rtWarmup   = 2 * time.Second
	rtMeasure  = 10 * time.Second
	rtDrain    = 2 * time.Second
	rtParallel = 64 // connections opened at once
)

// raiseFileLimit lifts this process's open-file limit to its hard limit: 10,000 clients
// are 10,000 sockets. Plaza, started after, inherits it (and Go lifts its own too).
func raiseFileLimit() (uint64, error) {
	var l syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l); err != nil {
		return 0, err
	}
	l.Cur = l.Max
	return l.Cur, syscall.Setrlimit(syscall.RLIMIT_NOFILE, &l)
}

// runRealtime measures the real-time loads on one Plaza on SQLite with the in-process bus,
// a fresh one per load so that each memory reading starts from the same idle server.
func (h *harness) runRealtime(ctx context.Context, meta Meta) (*RealtimeRun, error) {
	limit, err := raiseFileLimit()
	if err != nil {
		return nil, fmt.Errorf("raising the open-file limit: %w", err)
	}
	run := &RealtimeRun{Date: time.Now().UTC(), Commit: meta.Commit, Dirty: meta.Dirty, LoadBefore: loadAverage()}
	defer func() { run.LoadAfter = loadAverage() }()
	for _, l := range realtimeLoads {
		if len(h.o.rtLoads) > 0 && !slices.Contains(h.o.rtLoads, l.key) {
			continue
		}
		r := RealtimeResult{Key: l.key, Name: l.name, Conns: l.conns, Rate: l.rate, GoalP99: l.goalP99, GoalConn: l.goalConn}
		if need := uint64(l.conns) + 256; limit < need {
			r.Skip = fmt.Sprintf("the open-file limit is %d, %d needed", limit, need)
			run.Loads = append(run.Loads, r)
			continue
		}
		h.logf("real time: %s", l.name)
		if err := h.realtimeLoad(ctx, l.kind, &r); err != nil {
			if ctx.Err() != nil {
				return run, ctx.Err()
			}
			r.Skip = err.Error()
			h.logf("%s: %v", l.name, err)
		}
		run.Loads = append(run.Loads, r)
	}
	return run, nil
}

func (h *harness) realtimeLoad(ctx context.Context, kind string, r *RealtimeResult) error {
	dir := filepath.Join(h.tmp, "realtime-"+r.Key)
	adminPassword := "Bench-admin-" + randomHex(12)
	userPassword := "Bench-user-" + randomHex(12)
	env := []string{
		"PLAZA_DATA_DIR=" + filepath.Join(dir, "data"),
		"PLAZA_ENV=production",
		"PLAZA_JWT_SECRET=" + randomHex(32),
		"PLAZA_RATE_LIMIT=0",
		"PLAZA_LOG_LEVEL=warn",
		"PLAZA_ADMIN_EMAIL=" + adminEmail,
		"PLAZA_ADMIN_PASSWORD=" + adminPassword,
		// Every member signs in as the one bench user (a registration each would cost an
		// argon2id hash each), so the per-user cap must allow them all.
		"PLAZA_WS_MAX_CONNS=" + strconv.Itoa(r.Conns+10),
	}
	srv, err := h.startPlaza(env, "realtime "+r.Key)
	if err != nil {
		return err
	}
	defer srv.p.stop(30 * time.Second)
	if _, err := waitReady(ctx, srv.p, srv.base+"/readyz", srv.p.started, time.Minute); err != nil {
		return err
	}
	a := api{base: srv.base, client: &http.Client{Timeout: 30 * time.Second}}
	token := ""
	if kind != kindRoom {
		token, err = a.login(ctx, adminEmail, adminPassword)
	} else if err = a.register(ctx, "Bench User", userEmail, userPassword); err == nil {
		token, err = a.login(ctx, userEmail, userPassword)
	}
	if err != nil {
		return err
	}
	before, err := settledRSS(ctx, srv)
	if err != nil {
		return err
	}

	// Senders pace themselves; only what is sent within the measured window counts. Every
	// delivery asks, so the window's ends are atomics (Unix nanoseconds, 0 unset) rather
	// than behind a lock all the readers would share.
	var window struct{ start, end atomic.Int64 }
	inWindow := func(t time.Time) bool {
		start, end, at := window.start.Load(), window.end.Load(), t.UnixNano()
		return start != 0 && at >= start && (end == 0 || at < end)
	}
	lat := &latencies{counts: inWindow}
	var load rtLoad
	switch kind {
	case kindSSE:
		load, err = openSSE(ctx, srv.base, r.Conns, lat)
	case kindGraphQL:
		load, err = openSubscriptions(ctx, srv.base, r.Conns, lat)
	default:
		load, err = openRoom(ctx, srv.base, token, r.Conns, lat)
	}
	if load != nil {
		defer load.close()
	}
	if err != nil {
		return err
	}
	after, err := settledRSS(ctx, srv)
	if err != nil {
		return err
	}
	r.PerConn = (after - before) / int64(r.Conns)
	cutBefore := load.cut()

	sendCtx, stopSending := context.WithCancel(ctx)
	defer stopSending()
	var sent atomic.Int64
	var sendErr error
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		sendErr = load.send(sendCtx, r.Rate, func(at time.Time) {
			if inWindow(at) {
				sent.Add(1)
			}
		}, token)
	}()
	time.Sleep(rtWarmup)
	start := time.Now()
	window.start.Store(start.UnixNano())
	cpuStart, _ := sampleCPU(srv.p.pid())
	genStart, _ := sampleCPU(os.Getpid())
	if h.o.profile == "always" {
		if r.Profile, err = h.cpuProfile(ctx, srv, r.Key, r.Name, rtMeasure-time.Second); err != nil {
			return err
		}
	}
	time.Sleep(time.Until(start.Add(rtMeasure)))
	window.end.Store(time.Now().UnixNano())
	cpuEnd, _ := sampleCPU(srv.p.pid())
	genEnd, _ := sampleCPU(os.Getpid())
	stopSending()
	wg.Wait()
	time.Sleep(rtDrain)
	if err := srv.p.alive(); err != nil {
		return err
	}
	if sendErr != nil && !errors.Is(sendErr, context.Canceled) {
		return fmt.Errorf("sending: %w", sendErr)
	}
	r.Sent = sent.Load()
	r.Expected = r.Sent * int64(r.Conns)
	r.Cut = load.cut() - cutBefore
	all := lat.all()
	r.Delivered = int64(len(all))
	// CPU per delivery varies far less than latency on a shared machine: the log gives it
	// for Plaza and for this generator, with what other processes took meanwhile.
	if r.Delivered > 0 {
		perDelivery := func(a, b cpuSample) float64 {
			return float64(b.ours-a.ours) / clockTicks * 1e6 / float64(r.Delivered)
		}
		h.logf("%s: CPU per delivery in the window: Plaza %.1f µs, generator %.1f µs; other processes %.2f cores",
			r.Key, perDelivery(cpuStart, cpuEnd), perDelivery(genStart, genEnd), otherCores(cpuStart, cpuEnd, 0)-float64(genEnd.ours-genStart.ours)/clockTicks/cpuEnd.at.Sub(cpuStart.at).Seconds())
	}
	if len(all) > 0 {
		slices.Sort(all)
		q := func(p float64) int64 { return all[min(len(all)-1, int(p*float64(len(all))))] }
		r.LatencyUS.P50, r.LatencyUS.P99, r.LatencyUS.P999, r.LatencyUS.Max = q(0.50), q(0.99), q(0.999), all[len(all)-1]
	}
	return nil
}

// cpuProfile takes a CPU profile of srv for d and returns its top functions.
func (h *harness) cpuProfile(ctx context.Context, srv plaza, key, name string, d time.Duration) (*Profile, error) {
	secs := int(d / time.Second)
	prof := &Profile{Key: key, Name: name, Seconds: secs}
	path := filepath.Join(h.tmp, "cpu-"+key+".pprof")
	if err := fetch(ctx, "http://"+srv.debug+"/debug/pprof/profile?seconds="+strconv.Itoa(secs), path); err != nil {
		return nil, err
	}
	for _, cum := range []bool{false, true} {
		args := []string{"tool", "pprof", "-top", "-nodecount=25"}
		if cum {
			args = append(args, "-cum")
		}
		out, err := exec.CommandContext(ctx, h.goBin, append(args, h.bins.plaza, path)...).Output()
		if err != nil {
			return nil, fmt.Errorf("go tool pprof: %w", err)
		}
		if cum {
			prof.TopCum = string(out)
		} else {
			prof.Top = string(out)
		}
	}
	return prof, nil
}

// settledRSS is the server's VmRSS once idle for rtIdle and after the runtime has
// collected garbage and handed its free pages back to the OS (POST
// /debug/free-os-memory on the debug listener). A collection alone (a heap profile with
// gc=1, as this read before) leaves up to the heap goal resident, twice the live heap, so
// the reading moved with the collector's cycle: 12 to 25 KiB a connection for the same
// code, and below zero at 1,000 connections when the baseline still held the login's
// argon2id memory.
func settledRSS(ctx context.Context, srv plaza) (int64, error) {
	time.Sleep(rtIdle)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+srv.debug+"/debug/free-os-memory", nil)
	if err != nil {
		return 0, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err == nil {
		resp.Body.Close()
		if resp.StatusCode != http.StatusNoContent {
			err = fmt.Errorf("answered %s", resp.Status)
		}
	}
	if err != nil {
		return 0, fmt.Errorf("freeing memory: %w", err)
	}
	time.Sleep(time.Second)
	return memStatus(srv.p.pid(), "VmRSS")
}

// latencies collects delivery latencies (µs) of events sent within the window, each
// reader's in a recorder of its own: one lock that every reader took for every delivery
// would be the generator's cost, not Plaza's.
type latencies struct {
	counts func(sent time.Time) bool
	mu     sync.Mutex
	recs   []*recorder
}

// recorder is one reader's latencies.
type recorder struct {
	l  *latencies
	mu sync.Mutex // taken by its reader and by all, never by another reader
	us []int64
}

// recorder returns a recorder for one reader.
func (l *latencies) recorder() *recorder {
	r := &recorder{l: l}
	l.mu.Lock()
	l.recs = append(l.recs, r)
	l.mu.Unlock()
	return r
}

func (r *recorder) add(sent, got time.Time) {
	if !r.l.counts(sent) {
		return
	}
	r.mu.Lock()
	r.us = append(r.us, got.Sub(sent).Microseconds())
	r.mu.Unlock()
}

func (l *latencies) all() []int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	var all []int64
	for _, r := range l.recs {
		r.mu.Lock()
		all = append(all, r.us...)
		r.mu.Unlock()
	}
	return all
}

// rtLoad is a set of open connections that can be sent through.
type rtLoad interface {
	// send sends at rate per second until ctx ends, calling sent with each send time.
	send(ctx context.Context, rate float64, sent func(time.Time), token string) error
	cut() int64 // connections ended by the server so far
	close()
}

// room is members of the general room.
type room struct {
	conns []*websocket.Conn
	ended atomic.Int64
}

// openRoom connects n members of the general room with the bearer token; each reads its
// frames and records the latency of every message, whose client_id is its send time.
func openRoom(ctx context.Context, base, token string, n int, lat *latencies) (*room, error) {
	r := &room{conns: make([]*websocket.Conn, n)}
	wsURL := "ws" + strings.TrimPrefix(base, "http") + "/ws"
	client := &http.Client{Transport: &http.Transport{DialContext: (&net.Dialer{}).DialContext}}
	err := parallel(ctx, n, func(ctx context.Context, i int) error {
		c, _, err := websocket.Dial(ctx, wsURL, &websocket.DialOptions{HTTPClient: client, HTTPHeader: http.Header{"Authorization": {"Bearer " + token}}})
		if err != nil {
			return err
		}
		c.SetReadLimit(1 << 20)
		r.conns[i] = c
		if err := c.Write(ctx, websocket.MessageText, []byte(`{"type":"join","room":"general"}`)); err != nil {
			return err
		}
		for {
			_, b, err := c.Read(ctx)
			if err != nil {
				return err
			}
			if bytes.Contains(b, []byte(`"type":"joined"`)) {
				break
			}
		}
		go r.read(c, lat.recorder())
		return nil
	})
	return r, err
}

// read reads the member's frames into one buffer, reused (Conn.Read allocates one a
// frame), until the connection ends.
func (r *room) read(c *websocket.Conn, rec *recorder) {
	var buf bytes.Buffer
	for {
		_, rd, err := c.Reader(context.Background())
		if err == nil {
			buf.Reset()
			_, err = buf.ReadFrom(rd)
		}
		if err != nil {
			r.ended.Add(1)
			return
		}
		got := time.Now()
		if sent, ok := messageSentAt(buf.Bytes()); ok {
			rec.add(sent, got)
		}
	}
}

// messageSentAt returns the send time a message frame carries in its client_id (Unix
// nanoseconds, see send). The frame is Plaza's JSON, whose only "client_id" key is the
// message's (a quote inside a string value is escaped); finding it costs far less than
// decoding the frame, which every member does for every message.
func messageSentAt(frame []byte) (time.Time, bool) {
	if !bytes.Contains(frame, []byte(`"type":"message"`)) {
		return time.Time{}, false
	}
	_, id, ok := bytes.Cut(frame, []byte(`"client_id":"`))
	if !ok {
		return time.Time{}, false
	}
	ns, rest, ok := leadingInt(id)
	return time.Unix(0, ns), ok && len(rest) > 0 && rest[0] == '"'
}

// eventStock returns the stock an SSE event's data (JSON, the data line) sets: its only
// "stock" key is the product's. As with messageSentAt, finding it is far cheaper than
// decoding the event.
func eventStock(data []byte) (int64, bool) {
	_, v, ok := bytes.Cut(data, []byte(`"stock":`))
	if !ok {
		return 0, false
	}
	n, rest, ok := leadingInt(v)
	return n, ok && len(rest) > 0 && (rest[0] == ',' || rest[0] == '}')
}

// leadingInt parses the decimal digits b starts with (at least one, and an int64) and
// returns what follows them.
func leadingInt(b []byte) (n int64, rest []byte, ok bool) {
	i := 0
	for ; i < len(b) && b[i] >= '0' && b[i] <= '9'; i++ {
		d := int64(b[i] - '0')
		if n > (math.MaxInt64-d)/10 {
			return 0, nil, false
		}
		n = n*10 + d
	}
	return n, b[i:], i > 0
}

// send spreads the rate over enough members that none exceeds 5 messages a second, half
// the per-connection limit.
func (r *room) send(ctx context.Context, rate float64, sent func(time.Time), _ string) error {
	senders := max(1, int(rate+4)/5)
	every := time.Duration(float64(time.Second) * float64(senders) / rate)
	var wg sync.WaitGroup
	errs := make([]error, senders)
	for i := range senders {
		c := r.conns[i]
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Senders start spread over one interval rather than all at once.
			time.Sleep(every * time.Duration(i) / time.Duration(senders))
			t := time.NewTicker(every)
			defer t.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case <-t.C:
				}
				now := time.Now()
				frame := `{"type":"message","room":"general","text":"bench","client_id":"` + strconv.FormatInt(now.UnixNano(), 10) + `"}`
				// A send under way finishes: cut short, it might still arrive uncounted.
				wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
				err := c.Write(wctx, websocket.MessageText, []byte(frame))
				cancel()
				if err != nil {
					errs[i] = err
					return
				}
				sent(now)
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

func (r *room) cut() int64 { return r.ended.Load() }

func (r *room) close() {
	for _, c := range r.conns {
		if c != nil {
			c.CloseNow()
		}
	}
}

// streams are SSE subscribers to product updates.
type streams struct {
	base   string
	cancel context.CancelFunc
	ended  atomic.Int64
	sentAt sync.Map // stock value → send time
}

// openSSE opens n anonymous streams of product.updated events; each records the latency
// of every event, looked up by the stock value the update set.
func openSSE(ctx context.Context, base string, n int, lat *latencies) (*streams, error) {
	sctx, cancel := context.WithCancel(context.Background())
	s := &streams{base: base, cancel: cancel}
	client := &http.Client{Transport: &http.Transport{DialContext: (&net.Dialer{}).DialContext}}
	err := parallel(ctx, n, func(ctx context.Context, _ int) error {
		req, err := http.NewRequestWithContext(sctx, "GET", base+"/api/events?types=product.updated", nil)
		if err != nil {
			return err
		}
		res, err := client.Do(req)
		if err != nil {
			return err
		}
		if res.StatusCode != 200 {
			res.Body.Close()
			return fmt.Errorf("GET /api/events: %d", res.StatusCode)
		}
		go s.read(res, lat.recorder())
		return nil
	})
	return s, err
}

func (s *streams) read(res *http.Response, rec *recorder) {
	defer res.Body.Close()
	br := bufio.NewReader(res.Body)
	for {
		line, err := br.ReadSlice('\n')
		if err != nil {
			s.ended.Add(1)
			return
		}
		data, ok := bytes.CutPrefix(line, []byte("data: "))
		if !ok {
			continue
		}
		got := time.Now()
		stock, ok := eventStock(data)
		if !ok {
			continue
		}
		if at, ok := s.sentAt.Load(stock); ok {
			rec.add(at.(time.Time), got)
		}
	}
}

// send updates one product's stock at rate as the admin; each update's stock value is
// new, so subscribers can tell when it was sent.
func (s *streams) send(ctx context.Context, rate float64, sent func(time.Time), token string) error {
	a := api{base: s.base, client: &http.Client{Timeout: 10 * time.Second}}
	var created struct{ ID string }
	err := a.call(ctx, "POST", "/api/products", token, map[string]any{
		"name": "Realtime bench " + randomHex(4), "description": "updated by the bench", "price_cents": 100,
		"currency": "EUR", "category": "books", "subcategory": "fiction", "stock": 0,
	}, &created)
	if err != nil {
		return err
	}
	t := time.NewTicker(time.Duration(float64(time.Second) / rate))
	defer t.Stop()
	for stock := int64(1); ; stock++ {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		now := time.Now()
		s.sentAt.Store(stock, now)
		// An update under way finishes: cut short, it might still be applied uncounted.
		if err := a.call(context.WithoutCancel(ctx), "PATCH", "/api/products/"+created.ID, token, map[string]any{"stock": stock}, nil); err != nil {
			return err
		}
		sent(now)
	}
}

func (s *streams) cut() int64 { return s.ended.Load() }

func (s *streams) close() { s.cancel() }

// productChanged is what each GraphQL subscriber asks for.
const productChanged = `subscription { productChanged { type product { stock } } }`

// openSubscriptions opens n anonymous graphql-transport-ws connections to /graphql, each
// subscribed to productChanged; they are fed by the same updates as the SSE streams (send)
// and record latencies the same way, by stock value.
func openSubscriptions(ctx context.Context, base string, n int, lat *latencies) (*streams, error) {
	sctx, cancel := context.WithCancel(context.Background())
	s := &streams{base: base, cancel: cancel}
	wsURL := "ws" + strings.TrimPrefix(base, "http") + "/graphql"
	client := &http.Client{Transport: &http.Transport{DialContext: (&net.Dialer{}).DialContext}}
	subscribe, _ := json.Marshal(map[string]any{"id": "1", "type": "subscribe", "payload": map[string]any{"query": productChanged}})
	err := parallel(ctx, n, func(ctx context.Context, _ int) error {
		c, _, err := websocket.Dial(ctx, wsURL, &websocket.DialOptions{HTTPClient: client, Subprotocols: []string{"graphql-transport-ws"}})
		if err != nil {
			return err
		}
		c.SetReadLimit(1 << 20)
		if err := c.Write(ctx, websocket.MessageText, []byte(`{"type":"connection_init","payload":{}}`)); err != nil {
			c.CloseNow()
			return err
		}
		if _, b, err := c.Read(ctx); err != nil || !bytes.Contains(b, []byte(`"connection_ack"`)) {
			c.CloseNow()
			return fmt.Errorf("connection_init: %s %v", b, err)
		}
		if err := c.Write(ctx, websocket.MessageText, subscribe); err != nil {
			c.CloseNow()
			return err
		}
		go s.readSubscription(sctx, c, lat.recorder())
		return nil
	})
	return s, err
}

// readSubscription records the latency of every productChanged it receives and answers
// the server's pings, until the connection or ctx ends.
func (s *streams) readSubscription(ctx context.Context, c *websocket.Conn, rec *recorder) {
	defer c.CloseNow()
	var m struct {
		Type    string
		Payload struct {
			Data struct {
				ProductChanged struct{ Product struct{ Stock int64 } }
			}
		}
	}
	for {
		_, b, err := c.Read(ctx)
		if err != nil {
			if ctx.Err() == nil {
				s.ended.Add(1)
			}
			return
		}
		got := time.Now()
		if json.Unmarshal(b, &m) != nil {
			continue
		}
		switch m.Type {
		case "next":
			if at, ok := s.sentAt.Load(m.Payload.Data.ProductChanged.Product.Stock); ok {
				rec.add(at.(time.Time), got)
			}
		case "ping":
			if err := c.Write(ctx, websocket.MessageText, []byte(`{"type":"pong"}`)); err != nil && ctx.Err() == nil {
				s.ended.Add(1)
				return
			}
		case "error", "complete":
			s.ended.Add(1) // the server ended the subscription (a slow one is completed)
			return
		}
	}
}

// parallel runs fn for 0..n-1, rtParallel at a time, and returns the first error.
func parallel(ctx context.Context, n int, fn func(ctx context.Context, i int) error) error {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	next := atomic.Int64{}
	var first error
	var once sync.Once
	var wg sync.WaitGroup
	for range rtParallel {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= n || ctx.Err() != nil {
					return
				}
				if err := fn(ctx, i); err != nil {
					once.Do(func() { first = fmt.Errorf("connection %d: %w", i, err); cancel() })
					return
				}
			}
		}()
	}
	wg.Wait()
	return first
}

// realtimeMarkdown writes the real-time section: delivery latency per load against its
// goal, and resident memory per idle connection.
func (r Report) realtimeMarkdown(w func(string, ...any)) {
	rt := r.Realtime
	if rt == nil || len(rt.Loads) == 0 {
		return
	}
	w("## Real time\n\n")
	commit := "`" + rt.Commit + "`"
	if rt.Dirty {
		commit += " with uncommitted changes"
	}
	w("Measured %s at commit %s; 1-minute load average %.2f before, %.2f after (the loads' own included). ", rt.Date.Format("2006-01-02 15:04 MST"), commit, rt.LoadBefore, rt.LoadAfter)
	w("A Go load generator in the harness (github.com/coder/websocket, the open-file limit raised to its hard limit) on the same machine, against one Plaza on SQLite with the in-process bus, a fresh one per load. ")
	w("Members connect, join `general` and idle %s; then senders run a %s warm-up and a %s measured window. ", fmtDuration(rtIdle), fmtDuration(rtWarmup), fmtDuration(rtMeasure))
	w("Latency is from just before a sender's write to each receiver's read returning, both in the generator's process, over every delivery of what was sent in the window; deliveries are counted %s after it ends.\n\n", fmtDuration(rtDrain))
	w("| load | connections | sent/s | sent | deliveries (of owed) | cut | p50 | p99 | p99.9 | max | goal p99 | |\n")
	w("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|\n")
	for _, l := range rt.Loads {
		if l.Skip != "" {
			w("| %s | %s | — | — | — | — | — | — | — | — | %s | not measured: %s |\n", l.Name, fmtInt(int64(l.Conns)), fmtDuration(l.GoalP99), oneLine(l.Skip))
			continue
		}
		goal, status := "—", "no goal"
		if l.GoalP99 > 0 {
			goal = fmtDuration(l.GoalP99)
			status = metOrMissed(l.Delivered > 0 && time.Duration(l.LatencyUS.P99)*time.Microsecond <= l.GoalP99 && l.Delivered == l.Expected)
		}
		w("| %s | %s | %g | %s | %s (%s) | %d | %s | %s | %s | %s | %s | %s |\n", l.Name, fmtInt(int64(l.Conns)), l.Rate, fmtInt(l.Sent),
			fmtInt(l.Delivered), fmtInt(l.Expected), l.Cut, fmtLatency(l.LatencyUS.P50), fmtLatency(l.LatencyUS.P99), fmtLatency(l.LatencyUS.P999), fmtLatency(l.LatencyUS.Max), goal, status)
	}
	w("\n| load | resident memory per idle connection | goal | |\n|---|---:|---:|---|\n")
	for _, l := range rt.Loads {
		if l.Skip != "" {
			continue
		}
		if l.GoalConn == 0 {
			w("| %s | %.1f KiB | — | no goal |\n", l.Name, float64(l.PerConn)/1024)
			continue
		}
		w("| %s | %.1f KiB | %d KiB | %s |\n", l.Name, float64(l.PerConn)/1024, l.GoalConn>>10, metOrMissed(l.PerConn <= l.GoalConn))
	}
	w("\nMemory is Plaza's VmRSS with every connection open and idle (joined, for WebSockets) minus VmRSS before the first connected, divided by the connections; each reading follows %s of idleness, a garbage collection and the return of every free page to the OS (`POST /debug/free-os-memory` on `PLAZA_DEBUG_ADDR`, debug.FreeOSMemory), so that neither reading holds garbage or the collector's headroom. ", fmtDuration(rtIdle))
	w("Every WebSocket member signs in as the one bench user (a registration each would cost an argon2id hash), so presence lists hold one name; SSE subscribers are anonymous and follow `product.updated`, which the admin sends by PATCHing one product's stock, the value telling the subscriber when it was sent. ")
	w("GraphQL subscribers are anonymous graphql-transport-ws connections to `/graphql`, each with one `%s`, fed by the same PATCHes and timed the same way.\n\n", productChanged)
	for _, l := range rt.Loads {
		if p := l.Profile; p != nil {
			w("<details><summary>%s: %d s CPU profile of Plaza in the measured window, top by flat and by cumulative time</summary>\n\n", l.Name, p.Seconds)
			w("```\n%s\n```\n\n```\n%s\n```\n\n</details>\n\n", strings.TrimSpace(p.Top), strings.TrimSpace(p.TopCum))
		}
	}
}
