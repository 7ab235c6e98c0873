package store

import (
	"testing"
	"time"
)

// TestCompanyDeadline: who waits for company before a group, and until when (see
// commit.go): only a short queue right after groups of several writes, never a lone
// writer, a write after a pause, riders alone, or anything once the store closes.
func TestCompanyDeadline(t *testing.T) {
	t.Parallel()
	now := time.Now()
	busy := func() *committer {
		// Groups of 16 until a moment ago; the last took 1 ms.
		return &committer{peak: 16, lastEnd: now, lastTook: time.Millisecond, writers: 1}
	}
	waits := func(c *committer) (time.Duration, bool) {
		d, ok := c.companyDeadline(now)
		return d.Sub(now), ok
	}

	if d, ok := waits(busy()); !ok || d != time.Millisecond {
		t.Errorf("one write queued after groups of 16: waits %v, %v; want until 1ms after the last group", d, ok)
	}
	c := busy()
	c.arrived = now.Add(500 * time.Microsecond)
	if d, ok := waits(c); !ok || d != 1500*time.Microsecond {
		t.Errorf("a write arrived 0.5 ms later: waits until %v, %v; want 1.5ms (1 ms after it)", d, ok)
	}
	c.arrived = now.Add(3900 * time.Microsecond)
	if d, ok := waits(c); !ok || d != 2*companyWait {
		t.Errorf("writes kept arriving: waits until %v, %v; want at most %v after the last group", d, ok, 2*companyWait)
	}
	c = busy()
	c.lastTook = time.Second // it waited for the writer connection
	if d, ok := waits(c); !ok || d != companyWait {
		t.Errorf("after a group that took 1 s: waits until %v, %v; want %v", d, ok, companyWait)
	}

	for name, c := range map[string]*committer{
		"half the peak queued":    {peak: 16, lastEnd: now, lastTook: time.Millisecond, writers: 8},
		"a lone writer":           {peak: 1, lastEnd: now, lastTook: time.Millisecond, writers: 1},
		"only riders queued":      {peak: 16, lastEnd: now, lastTook: time.Millisecond},
		"after a pause":           {peak: 16, lastEnd: now.Add(-time.Second), lastTook: time.Millisecond, writers: 1},
		"the store closing":       {peak: 16, lastEnd: now, lastTook: time.Millisecond, writers: 1, closed: true},
		"before any group at all": {writers: 1},
	} {
		if _, ok := c.companyDeadline(now); ok {
			t.Errorf("%s: waits for company", name)
		}
	}
}
