package main

import (
	"bufio"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// servicePIDs returns the processes of the PostgreSQL and Redis servers behind the given
// URLs: the process listening on each URL's port on this machine and its children
// (PostgreSQL's backends). They are part of the system under test, so their CPU is not
// counted as other processes'. Unknown ports yield nothing.
func servicePIDs(urls ...string) []int {
	var ports []int
	for _, s := range urls {
		u, err := url.Parse(s)
		if err != nil {
			continue
		}
		if p, err := strconv.Atoi(u.Port()); err == nil {
			ports = append(ports, p)
		}
	}
	if len(ports) == 0 {
		return nil
	}
	inodes := map[string]bool{}
	for _, f := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		if b, err := os.ReadFile(f); err == nil {
			for _, in := range listeningInodes(string(b), ports) {
				inodes[in] = true
			}
		}
	}
	procs, _ := filepath.Glob("/proc/[0-9]*")
	var listeners []int
	parents := map[int]int{}
	for _, dir := range procs {
		pid, err := strconv.Atoi(filepath.Base(dir))
		if err != nil {
			continue
		}
		if b, err := os.ReadFile(dir + "/stat"); err == nil {
			if pp, ok := parentPID(string(b)); ok {
				parents[pid] = pp
			}
		}
		fds, _ := os.ReadDir(dir + "/fd")
		for _, fd := range fds {
			link, err := os.Readlink(dir + "/fd/" + fd.Name())
			if err == nil && strings.HasPrefix(link, "socket:[") && inodes[strings.TrimSuffix(strings.TrimPrefix(link, "socket:["), "]")] {
				listeners = append(listeners, pid)
				break
			}
		}
	}
	isListener := map[int]bool{}
	for _, p := range listeners {
		isListener[p] = true
	}
	pids := append([]int(nil), listeners...)
	for pid, pp := range parents {
		if isListener[pp] && !isListener[pid] {
			pids = append(pids, pid)
		}
	}
	return pids
}

// listeningInodes returns the socket inodes of /proc/net/tcp{,6} entries in state LISTEN
// (0A) on one of ports.
func listeningInodes(table string, ports []int) []string {
	var inodes []string
	sc := bufio.NewScanner(strings.NewReader(table))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 10 || f[3] != "0A" {
			continue
		}
		_, hexPort, ok := strings.Cut(f[1], ":")
		if !ok {
			continue
		}
		port, err := strconv.ParseInt(hexPort, 16, 32)
		if err != nil {
			continue
		}
		for _, p := range ports {
			if int(port) == p {
				inodes = append(inodes, f[9])
			}
		}
	}
	return inodes
}

// parentPID reads the parent PID (field 4) of a /proc/<pid>/stat line.
func parentPID(stat string) (int, bool) {
	i := strings.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, false
	}
	f := strings.Fields(stat[i+1:])
	if len(f) < 2 {
		return 0, false
	}
	pp, err := strconv.Atoi(f[1])
	return pp, err == nil
}
