package main

import (
	"context"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestReadmeTour runs the README's "## Tour" against a live server, so the README cannot
// drift from what Plaza does. The section's first sh block is the start command: the
// server is started in-process with the variables it sets (on a loopback port and a temp
// data dir). The other sh blocks run in order as one bash script, under set -euo pipefail,
// with PLAZA pointing at the server; every step either fails the script by itself (curl
// -f, jq -e, grep -x) or is followed by one that depends on it.
func TestReadmeTour(t *testing.T) {
	t.Parallel()
	for _, tool := range []string{"bash", "curl", "jq"} {
		if _, err := exec.LookPath(tool); err != nil {
			if os.Getenv("CI") == "true" {
				t.Fatalf("%s is not installed (make tools installs it)", tool)
			}
			t.Skipf("%s is not installed (make tools installs it)", tool)
		}
	}
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	blocks := tourBlocks(t, string(readme))
	env := startEnv(t, blocks[0])
	in := start(t, env)

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	script := "set -euo pipefail -x\n" + strings.Join(blocks[1:], "\n")
	cmd := exec.CommandContext(ctx, "bash", "-c", script)
	cmd.Env = append(os.Environ(), "PLAZA="+in.Addr)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("the README tour failed (%v); the last step shown is the one that failed:\n%s", err, out)
	}
}

// tourBlocks returns the bodies of the ```sh blocks under "## Tour", up to the next "## ".
func tourBlocks(t *testing.T, readme string) []string {
	t.Helper()
	_, section, ok := strings.Cut(readme, "\n## Tour\n")
	if !ok {
		t.Fatal(`README.md has no "## Tour" section`)
	}
	section, _, _ = strings.Cut(section, "\n## ")
	var blocks []string
	for _, m := range regexp.MustCompile("(?ms)^```sh\n(.*?)^```$").FindAllStringSubmatch(section, -1) {
		blocks = append(blocks, m[1])
	}
	if len(blocks) < 2 {
		t.Fatalf("the tour has %d sh blocks; want the start command and at least one step", len(blocks))
	}
	return blocks
}

// startEnv reads the start command, `VAR=value … go run ./cmd/plaza`, into its variables.
func startEnv(t *testing.T, block string) map[string]string {
	t.Helper()
	line := strings.TrimSpace(block)
	assigns, ok := strings.CutSuffix(line, "go run ./cmd/plaza")
	if !ok {
		t.Fatalf("the tour's first block should start Plaza with go run ./cmd/plaza; it is %q", line)
	}
	env := map[string]string{}
	rest := regexp.MustCompile(`([A-Z_]+)=('[^']*'|\S+)\s*`).ReplaceAllStringFunc(assigns, func(a string) string {
		name, val, _ := strings.Cut(strings.TrimSpace(a), "=")
		env[name] = strings.Trim(val, "'")
		return ""
	})
	if strings.TrimSpace(rest) != "" {
		t.Fatalf("cannot read %q in the start command", rest)
	}
	return env
}
