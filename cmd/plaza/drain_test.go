package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// inFlight reads the server's own count of requests in progress (the scrape included).
func inFlight(t *testing.T, url string) int {
	t.Helper()
	res, err := http.Get(url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	m := regexp.MustCompile(`(?m)^plaza_http_requests_in_flight (\d+)`).FindSubmatch(b)
	if m == nil {
		t.Fatal("no plaza_http_requests_in_flight in /metrics")
	}
	n, _ := strconv.Atoi(string(m[1]))
	return n
}

// TestGracefulDrain cancels run's context while 60 product creations are inside their
// handler, each waiting for the rest of its body. New connections are refused from then
// on; every one of the 60 then completes with 201 and a product of its own, and run
// returns nil.
//
// What it measures is that no request is lost or failed across the drain, not how fast a
// loaded machine answers: the requests are cheap writes (logins would be 60 argon2id hashes,
// seconds under -race on two busy cores), the shutdown timeout is far beyond any of them,
// and the waits below only guard against a hang.
//
// The requests are real slow requests rather than half-sent headers: net/http drops a
// connection whose request headers are still incomplete when Shutdown begins, so only a
// request already handed to a handler is in flight in the sense that matters.
func TestGracefulDrain(t *testing.T) {
	t.Parallel()
	const email = "drain@example.com"
	// hang bounds each wait; reaching it means the drain is broken, not that it was slow.
	const hang = 5 * time.Minute
	in := start(t, map[string]string{
		// 60 requests at once from one IP must not meet the per-client limiter.
		"PLAZA_RATE_LIMIT":       "0",
		"PLAZA_ADMIN_EMAIL":      email,
		"PLAZA_ADMIN_PASSWORD":   strongPassword,
		"PLAZA_SHUTDOWN_TIMEOUT": "10m",
	})
	token := signIn(t, in.URL, email, strongPassword).AccessToken

	const n = 60
	conns := make([]net.Conn, n)
	tails := make([]string, n)
	for i := range conns {
		body := fmt.Sprintf(`{"name":"Drain mug %d","price_cents":1899,"category":"home","subcategory":"kitchen","stock":1}`, i)
		head := body[:10]
		tails[i] = body[10:]
		c, err := net.Dial("tcp", in.Addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		_, err = fmt.Fprintf(c, "POST /api/products HTTP/1.1\r\nHost: plaza\r\nAuthorization: Bearer %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\nX-Request-ID: drain-%d\r\n\r\n%s", token, len(body), i, head)
		if err != nil {
			t.Fatal(err)
		}
		conns[i] = c
	}
	// Every handler has started (and is reading its body) once the server counts 60
	// requests in flight besides the scrape asking.
	deadline := time.Now().Add(hang)
	for inFlight(t, in.URL) < n+1 {
		if time.Now().After(deadline) {
			t.Fatalf("only %d requests in flight after %s", inFlight(t, in.URL)-1, hang)
		}
		time.Sleep(10 * time.Millisecond)
	}

	in.cancel()

	// A new connection is refused once the listener has closed.
	deadline = time.Now().Add(hang)
	for {
		c, err := net.DialTimeout("tcp", in.Addr, time.Second)
		if err != nil {
			break
		}
		c.Close()
		if time.Now().After(deadline) {
			t.Fatalf("listener still accepting %s after cancel", hang)
		}
		time.Sleep(10 * time.Millisecond)
	}

	var wg sync.WaitGroup
	ids := make([]string, n)
	errs := make(chan error, n)
	for i, c := range conns {
		wg.Go(func() {
			if _, err := io.WriteString(c, tails[i]); err != nil {
				errs <- fmt.Errorf("request %d: finishing the body: %w", i, err)
				return
			}
			c.SetReadDeadline(time.Now().Add(hang))
			res, err := http.ReadResponse(bufio.NewReader(c), nil)
			if err != nil {
				errs <- fmt.Errorf("request %d: %w", i, err)
				return
			}
			defer res.Body.Close()
			var p struct{ ID, Name string }
			if err := json.NewDecoder(res.Body).Decode(&p); err != nil || res.StatusCode != 201 || p.ID == "" || p.Name != fmt.Sprintf("Drain mug %d", i) {
				errs <- fmt.Errorf("request %d: status %d, product %+v, %v", i, res.StatusCode, p, err)
				return
			}
			ids[i] = p.ID
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	seen := map[string]bool{}
	for _, id := range ids {
		if id != "" && seen[id] {
			t.Errorf("product %s created twice", id)
		}
		seen[id] = true
	}
	select {
	case err := <-in.done:
		if err != nil {
			t.Fatalf("run returned %v after a clean drain", err)
		}
		close(in.done)
	case <-time.After(hang):
		t.Fatal("run did not return after the drain")
	}
}

// TestDrainPhasesSeenByALoadBalancer stops Plaza while keep-alive clients keep writing, the
// way a load balancer sees it: a prober polls /readyz (a new connection each time) and,
// once it reads a 503, routing stops: the clients send nothing after that. Before the
// close, every request sent must have succeeded, the 503 must have been answered by a
// still-serving instance, and each client must have had a response with Connection: close
// (so it would reconnect elsewhere) before the listeners closed.
func TestDrainPhasesSeenByALoadBalancer(t *testing.T) {
	t.Parallel()
	const email = "phases@example.com"
	// hang bounds each wait; reaching it means the drain is broken, not that it was slow.
	const hang = 2 * time.Minute
	in := start(t, map[string]string{
		"PLAZA_RATE_LIMIT":     "0",
		"PLAZA_ADMIN_EMAIL":    email,
		"PLAZA_ADMIN_PASSWORD": strongPassword,
		"PLAZA_DRAIN_DELAY":    "2s",
	})
	token := signIn(t, in.URL, email, strongPassword).AccessToken

	routedAway := make(chan struct{}) // closed by the prober at its first 503
	var readyzCode []int
	go func() {
		prober := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
		for {
			res, err := prober.Get(in.URL + "/readyz")
			if err != nil {
				// The listener closed before a 503 was seen: the test fails below.
				close(routedAway)
				return
			}
			res.Body.Close()
			readyzCode = append(readyzCode, res.StatusCode)
			if res.StatusCode == http.StatusServiceUnavailable {
				close(routedAway)
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
	}()

	const clients = 4
	keepAlive := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: clients}}
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		sent    int
		failed  []string
		warmed  sync.WaitGroup
		closing = make([]bool, clients) // the client had a Connection: close response
	)
	warmed.Add(clients)
	for c := range clients {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-routedAway:
					if closing[c] {
						return
					}
					// Routed away but this client has not yet been told to reconnect: a
					// load balancer may still send it one last request.
				default:
				}
				body := fmt.Sprintf(`{"name":"Phase mug %d-%d","price_cents":100,"category":"home","stock":1}`, c, i)
				req, _ := http.NewRequest("POST", in.URL+"/api/products", strings.NewReader(body))
				req.Header.Set("Authorization", "Bearer "+token)
				req.Header.Set("Content-Type", "application/json")
				res, err := keepAlive.Do(req)
				mu.Lock()
				sent++
				switch {
				case err != nil:
					failed = append(failed, err.Error())
				case res.StatusCode != http.StatusCreated:
					failed = append(failed, res.Status)
				case res.Close:
					closing[c] = true
				}
				mu.Unlock()
				if err == nil {
					io.Copy(io.Discard, res.Body)
					res.Body.Close()
				}
				if i == 10 {
					warmed.Done()
				}
				if err != nil {
					return
				}
			}
		})
	}
	warmed.Wait()
	in.cancel()

	finished := make(chan struct{})
	go func() { wg.Wait(); close(finished) }()
	select {
	case <-finished:
	case <-time.After(hang):
		t.Fatal("the clients did not stop")
	}
	if len(failed) > 0 {
		t.Errorf("%d of %d requests failed across the drain: %v", len(failed), sent, failed)
	}
	if len(readyzCode) == 0 || readyzCode[len(readyzCode)-1] != http.StatusServiceUnavailable {
		t.Errorf("/readyz answers before the close: %v; want a 503 last", readyzCode)
	}
	for c, ok := range closing {
		if !ok {
			t.Errorf("client %d never got Connection: close before the listener closed", c)
		}
	}
	select {
	case err := <-in.done:
		if err != nil {
			t.Fatalf("run returned %v after a clean drain", err)
		}
		close(in.done)
	case <-time.After(hang):
		t.Fatal("run did not return after the drain")
	}
	t.Logf("%d requests on %d keep-alive clients, 0 failed; /readyz 503 seen after %d probes", sent, clients, len(readyzCode))
}
