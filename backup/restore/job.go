// Package restore seeds a data directory from a stored backup and replays the binary log
// archive up to a point in time (docs/backup.md, "Restore"): the base is chosen and the chain
// of archived pieces built by pure functions (plan.go) before any data is touched; the base is
// seeded through the same path as a clone (physical) or loaded into a private server
// (logical); the pieces' transactions after the base's point and up to the target are replayed
// by GTID on that private server, which nobody else can reach; the GTID set reached must equal
// the planned one. Nothing here talks to the Kubernetes API: `kura init` runs it on the first
// instance of a cluster with spec.bootstrap and writes the Result as its termination message.
package restore

import (
	"encoding/json"
	"fmt"
	"time"

	kurav1alpha1 "github.com/kura-db/kura/api/v1alpha1"
	"github.com/kura-db/kura/backup"
)

// JobFileName is the name of the Job's JSON file in the bootstrap volume the operator mounts
// into the first instance's init container (contract.BootstrapDir).
const JobFileName = "restore.json"

// Job is what the operator asks of the first instance's `kura init`: which stored backup to
// seed from, where the source lineage's backups and archive are, and how far to replay.
type Job struct {
	// Storage is the source's backup storage (credentials are files, mounted from Secrets).
	Storage backup.StorageConfig `json:"storage"`
	// Source is the lineage the backup belongs to (the source cluster's namespace, name
	// and UID); its archive is read, never written.
	Source backup.Layout `json:"source"`
	// Backup is the backup's name in that lineage.
	Backup string `json:"backup"`
	// Target is the point to recover to; the zero Target stops at the backup's own point.
	Target Target `json:"target"`
	// Engine is the cluster's engine; a backup of another engine is refused.
	Engine kurav1alpha1.Engine `json:"engine"`
	// DryRun only plans: nothing is read beyond metadata and nothing is written.
	DryRun bool `json:"dryRun,omitempty"`
}

// Target is a point to recover to: at most one of Time and GTID.
type Target struct {
	// Time recovers every transaction committed at or before it.
	Time *time.Time `json:"time,omitempty"`
	// GTID recovers up to and including this GTID position (MariaDB: "0-1-42,1-2-7").
	GTID string `json:"gtid,omitempty"`
}

// IsZero reports whether the target is the backup's own point.
func (t Target) IsZero() bool { return t.Time == nil && t.GTID == "" }

// String names the target in messages.
func (t Target) String() string {
	switch {
	case t.Time != nil:
		return "time " + t.Time.UTC().Format(time.RFC3339)
	case t.GTID != "":
		return "GTID " + t.GTID
	default:
		return "the backup's point"
	}
}

// TargetOf converts the API's point in time (nil: the backup's point).
func TargetOf(p *kurav1alpha1.PointInTime) Target {
	if p == nil {
		return Target{}
	}
	t := Target{GTID: p.GTID}
	if p.Time != nil {
		tm := p.Time.UTC()
		t.Time = &tm
	}
	return t
}

// Result is what a restore reports (the init container's termination message, which the
// operator copies into the Restore's and the cluster's status).
type Result struct {
	// Plan is what was (or, for a dry run, would be) done.
	Plan Plan `json:"plan"`
	// GTIDReached is the executed GTID set of the restored data; it equals Plan.TargetGTID.
	GTIDReached string `json:"gtidReached,omitempty"`
	// TimeReached is the commit time of the last replayed transaction (the base's point
	// when nothing was replayed).
	TimeReached time.Time `json:"timeReached,omitzero"`
	// Replayed counts the transactions replayed; BytesRead the stored bytes read.
	Replayed  int   `json:"replayed,omitempty"`
	BytesRead int64 `json:"bytesRead,omitempty"`
	// DurationMS is the whole restore's duration; SeedMS and ReplayMS its two stages.
	DurationMS int64 `json:"durationMS,omitempty"`
	SeedMS     int64 `json:"seedMS,omitempty"`
	ReplayMS   int64 `json:"replayMS,omitempty"`
	// Verification is what a verification by restore read back (kura restore verify).
	Verification *Verification `json:"verification,omitempty"`
	// Error says why the restore failed (empty on success).
	Error string `json:"error,omitempty"`
}

// Plan is the base backup and the archived pieces a restore reads, decided before anything
// is written.
type Plan struct {
	Backup string                    `json:"backup"`
	Method kurav1alpha1.BackupMethod `json:"method"`
	// BaseGTID and BaseTime are the backup's consistent point.
	BaseGTID string    `json:"baseGTID"`
	BaseTime time.Time `json:"baseTime"`
	// Pieces are the sequence numbers of the archived pieces replayed, in order.
	Pieces []uint64 `json:"pieces,omitempty"`
	// Target is what was asked for, in words.
	Target string `json:"target"`
	// TargetGTID is the GTID position the restore must reach. For a time target it is known
	// once the pieces are read (before anything is applied); until then it is empty.
	TargetGTID string `json:"targetGTID,omitempty"`
	// Bytes is what the restore reads from storage: the backup's objects and the pieces.
	Bytes int64 `json:"bytes"`
}

// maxResult is the kubelet's limit for a termination message.
const maxResult = 4096

// Encode returns the result as JSON of at most 4096 bytes (the piece list is cut first, then
// the error).
func (r Result) Encode() []byte {
	b, _ := json.Marshal(r)
	if len(b) <= maxResult {
		return b
	}
	if n := len(r.Plan.Pieces); n > 2 {
		r.Plan.Pieces = []uint64{r.Plan.Pieces[0], r.Plan.Pieces[n-1]}
	}
	if b, _ = json.Marshal(r); len(b) <= maxResult {
		return b
	}
	if v := r.Verification; v != nil && len(v.Mismatches) > 8 {
		cut := *v
		cut.Mismatches = append(append([]string(nil), v.Mismatches[:8]...), fmt.Sprintf("and %d more", len(v.Mismatches)-8))
		r.Verification = &cut
		if b, _ = json.Marshal(r); len(b) <= maxResult {
			return b
		}
	}
	if len(r.Error) > 1024 {
		r.Error = r.Error[:1024] + "…"
	}
	b, _ = json.Marshal(r)
	return b
}

// DecodeResult reads a termination message.
func DecodeResult(b []byte) (Result, error) {
	var r Result
	if err := json.Unmarshal(b, &r); err != nil {
		return r, fmt.Errorf("failed to decode the restore result: %w", err)
	}
	return r, nil
}
