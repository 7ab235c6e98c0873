package gateway

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// TestConfigErrorsNameLineAndField: a mistake in the file is reported with the line and
// the field it is on, whether YAML cannot read it or a rule refuses it.
func TestConfigErrorsNameLineAndField(t *testing.T) {
	t.Parallel()
	cases := []struct {
		yaml, field string
		line        int
	}{
		{"routes:\n  - name: api\n    path_prefix: /api/\n    pool: nowhere\n", "routes[0].pool", 4},
		{"routes:\n  - name: api\n    path_prefix: api\n", "routes[0].path_prefix", 3},
		{"balancer: random\n", "balancer", 1},
		{"retry:\n  attempts: 3\n  budget: 2\n", "retry.budget", 3},
		{"routes:\n  - name: a\n    path_prefix: /\n    pth: /x\n", "", 4}, // unknown field
		{"health:\n  interval: soon\n", "", 2},                             // not a duration
		{"routes:\n  - name: a\n    path_prefix: /\n  - name: a\n    path_prefix: /b\n", "routes[1].name", 4},
	}
	for _, c := range cases {
		_, err := ParseConfig("gw.yaml", []byte(c.yaml), Default(Limit{Rate: 20, Burst: 40}))
		var cerr *ConfigError
		if !errors.As(err, &cerr) || cerr.Line != c.line || cerr.Field != c.field || !strings.HasPrefix(err.Error(), "gw.yaml:") {
			t.Errorf("%q: got %v (%+v), want line %d field %q", c.yaml, err, cerr, c.line, c.field)
		}
	}
}

func TestConfigFileOverDefaults(t *testing.T) {
	t.Parallel()
	cfg, err := ParseConfig("gw.yaml", []byte("balancer: round_robin\nroutes:\n  - name: ws\n    path_prefix: /ws\n    timeout: 0s\n  - name: rest\n    path_prefix: /\n    auth: required\n    limit: {rate: 2, burst: 4}\n"), Default(Limit{Rate: 20, Burst: 40}))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Balancer != "round_robin" || len(cfg.Routes) != 2 || cfg.Routes[0].Pool != InstancesPool || cfg.Routes[0].Auth != AuthOptional ||
		cfg.Routes[1].Auth != AuthRequired || cfg.Routes[1].Limit.Burst != 4 || cfg.Limits.Rate != 20 || cfg.Health.Interval != 500*time.Millisecond {
		t.Fatalf("%+v", cfg)
	}
}
