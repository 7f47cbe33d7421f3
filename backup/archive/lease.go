package archive

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/kura-db/kura/backup"
	"github.com/kura-db/kura/backup/storage"
)

// The lease says which archiver streams (docs/backup.md, "Archive"). It lives in storage, next
// to the pieces, so the archiver needs no Kubernetes API access and the lease follows the
// archive wherever it is stored. It is taken with a conditional create, renewed by its holder
// and taken over only once it has expired (renewed + ttl, by the taker's clock).
//
// Storage offers no compare-and-swap on update, so two archivers can briefly both believe they
// hold it (a takeover racing a late renewal). That never corrupts the archive: each piece's
// metadata is created with a conditional create under the next sequence number, so exactly one
// writer commits each number; the other sees ErrExists, stops streaming and waits for the
// lease again. The lease keeps two archivers from streaming side by side; the sequence number
// is the fence.

// LeaseRecord is lease.json.
type LeaseRecord struct {
	Holder  string        `json:"holder"`
	Renewed time.Time     `json:"renewed"`
	TTL     time.Duration `json:"ttl"`
}

// Expired reports whether the lease may be taken over at now.
func (r LeaseRecord) Expired(now time.Time) bool { return now.After(r.Renewed.Add(r.TTL)) }

// ErrLeaseLost is returned when another archiver holds the lease.
var ErrLeaseLost = errors.New("another archiver holds the archive lease")

type lease struct {
	st     storage.Storage
	key    string
	holder string
	ttl    time.Duration
	now    func() time.Time
}

func newLease(st storage.Storage, l backup.Layout, holder string, ttl time.Duration) *lease {
	return &lease{st: st, key: LeaseKey(l), holder: holder, ttl: ttl, now: time.Now}
}

func (l *lease) record() ([]byte, error) {
	return json.Marshal(LeaseRecord{Holder: l.holder, Renewed: l.now().UTC(), TTL: l.ttl})
}

func (l *lease) read(ctx context.Context) (LeaseRecord, error) {
	rc, err := l.st.Get(ctx, l.key)
	if err != nil {
		return LeaseRecord{}, err
	}
	defer func() { _ = rc.Close() }()
	b, err := io.ReadAll(io.LimitReader(rc, 64<<10))
	if err != nil {
		return LeaseRecord{}, err
	}
	var r LeaseRecord
	if err := json.Unmarshal(b, &r); err != nil {
		return LeaseRecord{}, fmt.Errorf("failed to parse the archive lease %s: %w", l.key, err)
	}
	return r, nil
}

// tryAcquire takes the lease if it is free, expired or already ours. It returns the current
// holder when someone else holds it.
func (l *lease) tryAcquire(ctx context.Context) (bool, LeaseRecord, error) {
	rec, err := l.record()
	if err != nil {
		return false, LeaseRecord{}, err
	}
	err = l.st.Create(ctx, l.key, rec)
	if err == nil {
		return true, LeaseRecord{}, nil
	}
	if !errors.Is(err, storage.ErrExists) {
		return false, LeaseRecord{}, err
	}
	cur, err := l.read(ctx)
	switch {
	case errors.Is(err, storage.ErrNotFound):
		return false, LeaseRecord{}, nil // released in between: try again
	case err != nil:
		return false, LeaseRecord{}, err
	case cur.Holder == l.holder:
		return true, cur, l.renew(ctx)
	case !cur.Expired(l.now()):
		return false, cur, nil
	}
	// Expired: delete and create again; of several takers one create wins.
	if err := l.st.Delete(ctx, l.key); err != nil {
		return false, cur, err
	}
	if err := l.st.Create(ctx, l.key, rec); err != nil {
		if errors.Is(err, storage.ErrExists) {
			return false, cur, nil
		}
		return false, cur, err
	}
	return true, cur, nil
}

// renew extends the lease, or returns ErrLeaseLost when someone else took it.
func (l *lease) renew(ctx context.Context) error {
	cur, err := l.read(ctx)
	if errors.Is(err, storage.ErrNotFound) {
		return fmt.Errorf("%w: the lease object was deleted", ErrLeaseLost)
	}
	if err != nil {
		return err
	}
	if cur.Holder != l.holder {
		return fmt.Errorf("%w: %s", ErrLeaseLost, cur.Holder)
	}
	rec, err := l.record()
	if err != nil {
		return err
	}
	_, err = l.st.Put(ctx, l.key, bytesReader(rec), int64(len(rec)))
	return err
}

// release gives the lease up if it is still ours.
func (l *lease) release(ctx context.Context) error {
	cur, err := l.read(ctx)
	if errors.Is(err, storage.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	if cur.Holder != l.holder {
		return nil
	}
	return l.st.Delete(ctx, l.key)
}
