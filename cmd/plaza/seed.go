package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"

	"plaza/internal/app"
	"plaza/internal/config"
)

const seedUsage = `Usage: plaza seed --products N [flags]

Adds N generated products (in transactions of 1000) to the configured database.
`

// runSeed is `plaza seed --products N`: --products is the command's own flag; the rest
// are the usual settings (DATABASE_URL, PLAZA_DATA_DIR, …).
func runSeed(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("seed", flag.ContinueOnError)
	n := fs.Int("products", 0, "how many products to add (`N` > 0)")
	cfg, err := config.Load(fs, seedUsage, args, getenv, stdout)
	if err != nil {
		return err
	}
	if *n <= 0 {
		fmt.Fprint(stderr, seedUsage)
		return fmt.Errorf("%w: plaza seed needs --products N with N > 0", errUsage)
	}
	start := time.Now()
	p := newProgress(stdout, *n)
	total, err := app.Seed(ctx, cfg, newLogger(cfg, stderr), *n, p.update)
	p.finish()
	if err != nil {
		return err
	}
	elapsed := time.Since(start)
	fmt.Fprintf(stdout, "seeded %d products in %s (%.0f products/s); the catalog holds %d\n",
		*n, elapsed.Round(time.Millisecond), float64(*n)/elapsed.Seconds(), total)
	return nil
}

// progress shows how far seeding got: a bar on a terminal, a line per tenth otherwise
// (logs and CI output stay readable).
type progress struct {
	bar      *progressbar.ProgressBar
	w        io.Writer
	total    int
	reported int
}

func newProgress(w io.Writer, total int) *progress {
	p := &progress{w: w, total: total}
	if f, ok := w.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		p.bar = progressbar.NewOptions(total,
			progressbar.OptionSetWriter(f),
			progressbar.OptionSetDescription("seeding"),
			progressbar.OptionShowCount(),
			progressbar.OptionShowIts(),
			progressbar.OptionSetItsString("products"),
			progressbar.OptionThrottle(100*time.Millisecond),
			progressbar.OptionClearOnFinish(),
		)
	}
	return p
}

func (p *progress) update(done int) {
	if p.bar != nil {
		_ = p.bar.Set(done)
		return
	}
	if step := p.total / 10; step > 0 && done < p.total && done-p.reported < step {
		return
	}
	p.reported = done
	fmt.Fprintf(p.w, "seeded %d/%d products\n", done, p.total)
}

func (p *progress) finish() {
	if p.bar != nil {
		_ = p.bar.Finish()
	}
}
