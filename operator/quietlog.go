package operator

import (
	"fmt"
	"sync"
	"time"

	"github.com/go-logr/logr"
)

// passLogRepeat is how often a clustering loop repeats an unchanged "pass" line.
const passLogRepeat = time.Minute

// quietPasses keeps a loop's log bounded: a pass logs at Info while its cluster is not
// healthy, once a second per cluster, and a fleet of clusters without running instances
// (still scheduling, or a node down) would fill the log with the same line. An Info "pass"
// line whose state, reason, steps and message equal the previous one's is dropped unless
// passLogRepeat has passed. Errors and every other line go through.
func quietPasses(l logr.Logger) logr.Logger {
	return logr.New(&quietSink{LogSink: l.GetSink(), last: &lastPass{}})
}

type lastPass struct {
	mu  sync.Mutex
	key string
	at  time.Time
}

type quietSink struct {
	logr.LogSink
	last *lastPass
}

func (s *quietSink) Info(level int, msg string, kv ...any) {
	if msg == "pass" && !s.last.fresh(passKey(kv)) {
		return
	}
	s.LogSink.Info(level, msg, kv...)
}

// fresh reports whether key differs from the last line logged, or that line is old.
func (p *lastPass) fresh(key string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if key == p.key && time.Since(p.at) < passLogRepeat {
		return false
	}
	p.key, p.at = key, time.Now()
	return true
}

func passKey(kv []any) string {
	key := ""
	for i := 0; i+1 < len(kv); i += 2 {
		switch kv[i] {
		case "state", "reason", "steps", "message", "primary", "term":
			key += fmt.Sprintf("%v=%v;", kv[i], kv[i+1])
		}
	}
	return key
}

func (s *quietSink) WithValues(kv ...any) logr.LogSink {
	return &quietSink{LogSink: s.LogSink.WithValues(kv...), last: s.last}
}

func (s *quietSink) WithName(name string) logr.LogSink {
	return &quietSink{LogSink: s.LogSink.WithName(name), last: s.last}
}
