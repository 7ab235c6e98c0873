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

// TestGracefulDrain cancels run's context while 60 logins are inside their handler, each
// waiting for the rest of its body. New connections are refused from then on; every one of
// the 60 then completes with 200 and a token pair, and run returns nil.
//
// The requests are real slow requests rather than half-sent headers: net/http drops a
// connection whose request headers are still incomplete when Shutdown begins, so only a
// request already handed to a handler is in flight in the sense that matters.
func TestGracefulDrain(t *testing.T) {
	t.Parallel()
	const email = "drain@example.com"
	in := start(t, map[string]string{
		// 60 requests at once from one IP must not meet the per-client limiter, and 60
		// successful logins of one user are not failures, so the login throttle stays out.
		"PLAZA_RATE_LIMIT":       "0",
		"PLAZA_ADMIN_EMAIL":      email,
		"PLAZA_ADMIN_PASSWORD":   strongPassword,
		"PLAZA_SHUTDOWN_TIMEOUT": "60s",
	})
	body := `{"email":"` + email + `","password":"` + strongPassword + `"}`
	head, tail := body[:10], body[10:]

	const n = 60
	conns := make([]net.Conn, n)
	for i := range conns {
		c, err := net.Dial("tcp", in.Addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		_, err = fmt.Fprintf(c, "POST /api/auth/login HTTP/1.1\r\nHost: plaza\r\nContent-Type: application/json\r\nContent-Length: %d\r\nX-Request-ID: drain-%d\r\n\r\n%s", len(body), i, head)
		if err != nil {
			t.Fatal(err)
		}
		conns[i] = c
	}
	// Every handler has started (and is reading its body) once the server counts 60
	// requests in flight besides the scrape asking.
	deadline := time.Now().Add(10 * time.Second)
	for inFlight(t, in.URL) < n+1 {
		if time.Now().After(deadline) {
			t.Fatalf("only %d requests in flight after 10s", inFlight(t, in.URL)-1)
		}
		time.Sleep(10 * time.Millisecond)
	}

	in.cancel()

	// A new connection is refused once the listener has closed.
	deadline = time.Now().Add(5 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", in.Addr, time.Second)
		if err != nil {
			break
		}
		c.Close()
		if time.Now().After(deadline) {
			t.Fatal("listener still accepting 5s after cancel")
		}
		time.Sleep(10 * time.Millisecond)
	}

	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i, c := range conns {
		wg.Go(func() {
			if _, err := io.WriteString(c, tail); err != nil {
				errs <- fmt.Errorf("request %d: finishing the body: %w", i, err)
				return
			}
			c.SetReadDeadline(time.Now().Add(30 * time.Second))
			res, err := http.ReadResponse(bufio.NewReader(c), nil)
			if err != nil {
				errs <- fmt.Errorf("request %d: %w", i, err)
				return
			}
			defer res.Body.Close()
			var tok tokenPair
			if err := json.NewDecoder(res.Body).Decode(&tok); err != nil || res.StatusCode != 200 || tok.AccessToken == "" || tok.RefreshToken == "" {
				errs <- fmt.Errorf("request %d: status %d, tokens %+v, %v", i, res.StatusCode, tok, err)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	select {
	case err := <-in.done:
		if err != nil {
			t.Fatalf("run returned %v after a clean drain", err)
		}
		close(in.done)
	case <-time.After(60 * time.Second):
		t.Fatal("run did not return after the drain")
	}
}
