package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"plaza/internal/openapitest"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"plaza/internal/redistest"
	"plaza/internal/store/storetest"
)

// childServeEnv makes the test binary run `plaza serve` instead of the tests (TestMain):
// an instance in a process of its own, which a test can kill outright.
const childServeEnv = "PLAZA_TEST_CHILD_SERVE"

func TestMain(m *testing.M) {
	if os.Getenv(childServeEnv) == "1" {
		err := run(context.Background(), []string{"plaza", "serve"}, os.Getenv, os.Stdin, os.Stdout, os.Stderr)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(exitCode(err))
		}
		os.Exit(0)
	}
	// Every REST request these tests make through http.DefaultTransport (http.Get,
	// http.DefaultClient, and clients without a transport of their own), and every answer,
	// is validated against api/openapi/openapi.yaml; a disagreement fails the run. GraphQL
	// exchanges follow GraphQL over HTTP instead, which the graphql-http audit checks.
	openapitest.Main(m, "/graphql", "/playground")
}

// startProcess runs `plaza serve` with env in a child process and waits until it is ready;
// the test kills it when it ends, if it has not already.
func startProcess(t *testing.T, env map[string]string) (url string, cmd *exec.Cmd) {
	t.Helper()
	cmd = exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childServeEnv+"=1", "PLAZA_HTTP_ADDR=127.0.0.1:0", "PLAZA_GRPC_ADDR=127.0.0.1:0",
		"PLAZA_DATA_DIR="+t.TempDir(), "PLAZA_LOG_LEVEL=info")
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	logs, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(logs)
		for sc.Scan() {
			var l struct{ Msg, Addr string }
			if json.Unmarshal(sc.Bytes(), &l) == nil && l.Msg == "http server listening" {
				addr <- l.Addr
			}
		}
		io.Copy(io.Discard, logs)
	}()
	select {
	case a := <-addr:
		url = "http://" + a
	case <-time.After(startWithin):
		t.Fatalf("the child instance did not listen within %s", startWithin)
	}
	deadline := time.Now().Add(startWithin)
	for {
		res, err := http.Get(url + "/readyz")
		if err == nil {
			res.Body.Close()
			if res.StatusCode == 200 {
				return url, cmd
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the child's /readyz never answered 200 (last: %v)", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestKilledInstanceLeavesPresence: the members of an instance killed with SIGKILL (no
// leave, no drain) disappear from the room's presence on the surviving instance within the
// presence TTL, and its member count.
func TestKilledInstanceLeavesPresence(t *testing.T) {
	t.Parallel()
	rs := redistest.Start(t)
	env := map[string]string{
		"DATABASE_URL":       storetest.PostgresURL(t),
		"REDIS_URL":          rs.URL(),
		"PLAZA_JWT_SECRET":   "a shared signing key of at least 32 bytes",
		"PLAZA_RATE_LIMIT":   "0",
		"PLAZA_PRESENCE_TTL": "2s",
	}
	survivor := start(t, env)
	victimURL, victim := startProcess(t, env)
	ann, bob := registerAndSignIn(t, survivor.URL, "Ann"), registerAndSignIn(t, survivor.URL, "Bob")

	a, b := connect(t, survivor.URL, ann), connect(t, victimURL, bob)
	a.send(`{"type":"join","room":"general"}`)
	a.next("joined")
	b.send(`{"type":"join","room":"general"}`)
	b.next("joined")
	a.presenceOf("Ann,Bob")

	if err := victim.Process.Signal(os.Kill); err != nil {
		t.Fatal(err)
	}
	victim.Wait()
	a.presenceOf("Ann")
	code, body := apiJSON(t, "GET", survivor.URL+"/api/rooms", ann, "")
	if code != 200 || !strings.Contains(string(body), `"slug":"general"`) || !strings.Contains(string(body), `"members":1`) {
		t.Fatalf("rooms after the kill: %d %s", code, body)
	}
}

// ends reads the stream until the server ends it; it fails the test if that takes more
// than 30 s (the guard of a hang, not a measurement).
func (s *sseStream) ends() {
	s.t.Helper()
	timer := time.AfterFunc(30*time.Second, func() { s.res.Body.Close() })
	defer timer.Stop()
	_, err := io.Copy(io.Discard, s.lines)
	if !timer.Stop() {
		s.t.Fatal("the event stream did not end")
	}
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) {
		s.t.Fatalf("the event stream broke rather than ended: %v", err)
	}
}

// TestEndedSessionsEndStreams: logging out, and being deleted, close the user's WebSocket
// connections with 1008 and end their SSE streams, at the next heartbeat (a third of the
// presence TTL).
func TestEndedSessionsEndStreams(t *testing.T) {
	t.Parallel()
	in, admin, _, _ := chatUsers(t, map[string]string{"PLAZA_PRESENCE_TTL": "900ms"})
	registerAndSignIn(t, in.URL, "Cid")
	cid := signIn(t, in.URL, "cid@example.com", strongPassword)
	dee := registerAndSignIn(t, in.URL, "Dee")

	type streams struct {
		ws  *wsConn
		sse *sseStream
	}
	open := func(token string) streams {
		ws := connect(t, in.URL, token)
		ws.send(`{"type":"join","room":"general"}`)
		ws.next("joined")
		return streams{ws, openEvents(t, in.URL, "?ticket="+ticket(t, in.URL, token), nil)}
	}
	c, d := open(cid.AccessToken), open(dee)

	if code, b := apiJSON(t, "POST", in.URL+"/api/auth/logout", cid.AccessToken, `{"refresh_token":"`+cid.RefreshToken+`"}`); code != 204 {
		t.Fatalf("logout: %d %s", code, b)
	}
	if code := c.ws.closeStatus(); code != websocket.StatusPolicyViolation {
		t.Fatalf("after logout: close %d, want 1008", code)
	}
	c.sse.ends()

	code, b := apiJSON(t, "GET", in.URL+"/api/users/me", dee, "")
	var me struct{ ID string }
	if json.Unmarshal(b, &me); code != 200 || me.ID == "" {
		t.Fatalf("me: %d %s", code, b)
	}
	if code, b := apiJSON(t, "DELETE", in.URL+"/api/users/"+me.ID, admin, ""); code != 204 {
		t.Fatalf("delete: %d %s", code, b)
	}
	if code := d.ws.closeStatus(); code != websocket.StatusPolicyViolation {
		t.Fatalf("after deletion: close %d, want 1008", code)
	}
	d.sse.ends()
}

// TestConnectionCap: past PLAZA_WS_MAX_CONNS a user's next upgrade is refused with 429
// before upgrading; closing one makes room again.
func TestConnectionCap(t *testing.T) {
	t.Parallel()
	in, _, ann, bob := chatUsers(t, map[string]string{"PLAZA_WS_MAX_CONNS": "2"})
	first, _ := connect(t, in.URL, ann), connect(t, in.URL, ann)
	if _, code := dialWS(t, in.URL, "", bearer(ann)); code != http.StatusTooManyRequests {
		t.Fatalf("a third connection: %d, want 429", code)
	}
	if _, code := dialWS(t, in.URL, "?ticket="+ticket(t, in.URL, ann), nil); code != http.StatusTooManyRequests {
		t.Fatalf("a third connection by ticket: %d, want 429", code)
	}
	connect(t, in.URL, bob) // the cap is per user
	first.c.Close(websocket.StatusNormalClosure, "")
	deadline := time.Now().Add(30 * time.Second)
	for {
		c, code := dialWS(t, in.URL, "", bearer(ann))
		if c != nil {
			break
		}
		if code != http.StatusTooManyRequests || time.Now().After(deadline) {
			t.Fatalf("after closing one: %d", code)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
