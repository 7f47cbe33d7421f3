package controllers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kurav1alpha1 "github.com/kura-db/kura/api/v1alpha1"
	"github.com/kura-db/kura/backup/archive"
	"github.com/kura-db/kura/internal/builder"
	"github.com/kura-db/kura/internal/events"
)

// archiverStub answers /status for every archiver Pod of the envtest suite (their Pods point
// at 127.0.0.1): the status a test sets.
type archiverStub struct {
	mu sync.Mutex
	st archive.Status
}

func (s *archiverStub) set(st archive.Status) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.st = st
}

func (s *archiverStub) ServeHTTP(w http.ResponseWriter, _ *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	_ = json.NewEncoder(w).Encode(s.st)
}

var archiver = &archiverStub{}

func startArchiverStub() *httptest.Server { return httptest.NewServer(archiver) }

func archiveCondition(c *kurav1alpha1.MySQLCluster, t string) *metav1.Condition {
	return meta.FindStatusCondition(c.Status.Conditions, t)
}

func waitArchiveCondition(t *testing.T, ns string, typ string, status metav1.ConditionStatus, reason string) *kurav1alpha1.MySQLCluster {
	t.Helper()
	var c *kurav1alpha1.MySQLCluster
	eventually(t, fmt.Sprintf("%s %s %s", typ, status, reason), func() error {
		c = getCluster(t, ns, "shop")
		cond := archiveCondition(c, typ)
		if cond == nil || cond.Status != status || cond.Reason != reason {
			return fmt.Errorf("condition %+v", cond)
		}
		return nil
	})
	return c
}

func waitEvent(t *testing.T, ns, reason string) *eventsv1.Event {
	t.Helper()
	var found *eventsv1.Event
	eventually(t, "event "+reason, func() error {
		var list eventsv1.EventList
		if err := k8s.List(context.Background(), &list, client.InNamespace(ns)); err != nil {
			return err
		}
		for i := range list.Items {
			if list.Items[i].Reason == reason {
				found = &list.Items[i]
				return nil
			}
		}
		return fmt.Errorf("%d events, none %s", len(list.Items), reason)
	})
	return found
}

// TestBinlogArchiveRunsTheArchiverAndReportsIt: spec.binlogArchive gets a Deployment running
// `kura archive` with a request naming every instance and the storage (no secret); the
// archiver's /status becomes status.binlogArchive and the conditions, next to the MySQLCluster
// reconciler's own; a gap and a stall turn BinlogArchiving False with an event; removing
// spec.binlogArchive removes the archiver and its conditions.
func TestBinlogArchiveRunsTheArchiverAndReportsIt(t *testing.T) {
	ns := newNamespace(t)
	ctx := context.Background()
	spec := &kurav1alpha1.BinlogArchiveSpec{Storage: kurav1alpha1.BackupStorage{S3: &kurav1alpha1.S3Storage{
		Bucket: "backups", Endpoint: "https://s3.example.com", CredentialsSecret: kurav1alpha1.S3CredentialsSecret{Name: "s3-keys"}}}}
	if err := k8s.Create(ctx, newMySQLCluster(ns, "shop", func(c *kurav1alpha1.MySQLCluster) { c.Spec.BinlogArchive = spec })); err != nil {
		t.Fatal(err)
	}
	waitReconciled(t, ns, "shop", metav1.ConditionTrue, "Reconciled")
	c := waitArchiveCondition(t, ns, kurav1alpha1.ConditionBinlogArchiving, metav1.ConditionFalse, reasonArchiveStarting)
	d := &appsv1.Deployment{}
	if err := k8s.Get(ctx, types.NamespacedName{Namespace: ns, Name: "shop-archive"}, d); err != nil {
		t.Fatal(err)
	}
	if !metav1.IsControlledBy(d, c) || *d.Spec.Replicas != 1 {
		t.Fatalf("deployment %+v", d.ObjectMeta)
	}
	cmd := d.Spec.Template.Spec.Containers[0].Command
	text, _ := strings.CutPrefix(cmd[len(cmd)-1], "--request=")
	var req archive.Request
	if err := json.Unmarshal([]byte(text), &req); err != nil {
		t.Fatalf("command %v: %v", cmd, err)
	}
	if req.Lineage != string(c.UID) || len(req.Sources) != int(builder.Replicas(c)) || req.Sources[1] != "shop-1.shop-instances."+ns+".svc.cluster.local:3306" ||
		req.PieceInterval != "2s" || req.PieceSize != 32<<20 || req.Storage.S3 == nil || req.Storage.S3.Bucket != "backups" || req.ServerID != builder.ArchiveServerID {
		t.Fatalf("request %+v", req)
	}

	// The archiver Pod runs; its status is read.
	last := time.Now().Add(-3 * time.Second).UTC().Truncate(time.Second)
	archiver.set(archive.Status{Holding: true, LastGTID: "0-1000-42", LastEventTime: last, CaughtUp: time.Now(), Pieces: 7})
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "shop-archive-x", Labels: builder.ArchiveLabels(c)},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "archive", Image: "kura:test"}}}}
	if err := k8s.Create(ctx, pod); err != nil {
		t.Fatal(err)
	}
	pod.Status = corev1.PodStatus{Phase: corev1.PodRunning, PodIP: "127.0.0.1", PodIPs: []corev1.PodIP{{IP: "127.0.0.1"}}}
	if err := k8s.Status().Update(ctx, pod); err != nil {
		t.Fatal(err)
	}
	c = waitArchiveCondition(t, ns, kurav1alpha1.ConditionBinlogArchiving, metav1.ConditionTrue, reasonArchiving)
	if s := c.Status.BinlogArchive; s == nil || s.LastArchivedGTID != "0-1000-42" || s.LastArchivedTime == nil || !s.LastArchivedTime.Time.Equal(last) || s.LagSeconds > 15 {
		t.Fatalf("status.binlogArchive %+v", c.Status.BinlogArchive)
	}
	if p := archiveCondition(c, kurav1alpha1.ConditionPointInTimeReady); p == nil || p.Status != metav1.ConditionFalse || p.Reason != "NoBackup" {
		t.Errorf("PointInTimeReady without a backup: %+v", p)
	}
	if r := archiveCondition(c, kurav1alpha1.ConditionReconciled); r == nil {
		t.Error("the MySQLCluster reconciler's condition is gone")
	}

	// A gap.
	archiver.set(archive.Status{Holding: true, LastGTID: "0-1000-90", LastEventTime: last, CaughtUp: time.Now(),
		Gaps: []archive.Gap{{AfterSeq: 7, Seq: 8, Archived: "0-1000-42", Next: "0-1000-61", Reason: "domain 0 continues at 61, the archive expects 43", Time: last}}})
	c = waitArchiveCondition(t, ns, kurav1alpha1.ConditionBinlogArchiving, metav1.ConditionFalse, reasonArchiveGap)
	if cond := archiveCondition(c, kurav1alpha1.ConditionBinlogArchiving); !strings.Contains(cond.Message, "take a new Backup") || c.Status.BinlogArchive.Gaps != 1 {
		t.Errorf("gap condition %+v, status %+v", cond, c.Status.BinlogArchive)
	}
	if e := waitEvent(t, ns, events.BinlogArchiveGap); e.Type != events.Warning || !strings.Contains(e.Note, "continues at 61") {
		t.Errorf("gap event %+v", e)
	}

	// A stall: nothing stored for longer than the threshold.
	archiver.set(archive.Status{Holding: true, LastGTID: "0-1000-90", LastEventTime: last, CaughtUp: time.Now().Add(-2 * time.Minute), LastError: "failed to store piece 9: connection refused"})
	c = waitArchiveCondition(t, ns, kurav1alpha1.ConditionBinlogArchiving, metav1.ConditionFalse, reasonArchiveStalled)
	if cond := archiveCondition(c, kurav1alpha1.ConditionBinlogArchiving); !strings.Contains(cond.Message, "connection refused") {
		t.Errorf("stall condition %+v", cond)
	}
	waitEvent(t, ns, events.BinlogArchiveStalled)

	// Turned off: the archiver and its conditions go.
	c.Spec.BinlogArchive = nil
	if err := updateSpec(ctx, c); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the archiver removed", func() error {
		err := k8s.Get(ctx, types.NamespacedName{Namespace: ns, Name: "shop-archive"}, &appsv1.Deployment{})
		if !apierrors.IsNotFound(err) {
			return fmt.Errorf("deployment: %v", err)
		}
		if cond := archiveCondition(getCluster(t, ns, "shop"), kurav1alpha1.ConditionBinlogArchiving); cond != nil {
			return fmt.Errorf("condition still there: %+v", cond)
		}
		return nil
	})
}

func completedBackup(name string, at time.Time) kurav1alpha1.Backup {
	return kurav1alpha1.Backup{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: kurav1alpha1.BackupSpec{BackupOptions: kurav1alpha1.BackupOptions{Cluster: "shop"}},
		Status: kurav1alpha1.BackupStatus{Phase: kurav1alpha1.BackupCompleted, SnapshotTime: &metav1.Time{Time: at}}}
}

// TestArchiveStatus: how the archiver's status and the Backups become the conditions.
func TestArchiveStatus(t *testing.T) {
	now := time.Date(2030, 1, 1, 12, 0, 0, 0, time.UTC)
	c := newMySQLCluster("prod", "shop", func(c *kurav1alpha1.MySQLCluster) { c.Spec.BinlogArchive = &kurav1alpha1.BinlogArchiveSpec{} })
	healthy := &archive.Status{Holding: true, LastGTID: "0-1000-500", LastEventTime: now.Add(-2 * time.Second), CaughtUp: now.Add(-time.Second)}
	gap := archive.Gap{Seq: 30, Archived: "0-1000-100", Next: "0-1000-150", Reason: "domain 0 continues at 150, the archive expects 101", Time: now.Add(-time.Hour)}
	withGap := *healthy
	withGap.Gaps = []archive.Gap{gap}
	stalled := *healthy
	stalled.CaughtUp = now.Add(-time.Minute)
	other := completedBackup("other-cluster", now.Add(-3*time.Hour))
	other.Spec.Cluster = "elsewhere"
	cases := []struct {
		name           string
		st             *archive.Status
		err            error
		backups        []kurav1alpha1.Backup
		archiving      string
		pitr           string
		first          *time.Time
		messageHas     string
		firstIsCleared bool
	}{
		{name: "no archiver Pod yet", err: errNoArchiver, archiving: reasonArchiveStarting, pitr: reasonPITRNoArchive},
		{name: "archiver unreachable", err: errors.New("the archiver does not answer: refused"), archiving: reasonArchiveDown, pitr: reasonPITRNoArchive},
		{name: "healthy without a backup", st: healthy, backups: []kurav1alpha1.Backup{other}, archiving: reasonArchiving, pitr: "NoBackup"},
		{name: "healthy with backups: recoverable from the oldest", st: healthy,
			backups:   []kurav1alpha1.Backup{completedBackup("b2", now.Add(-time.Hour)), completedBackup("b1", now.Add(-2*time.Hour))},
			archiving: reasonArchiving, pitr: reasonPITRReady, first: new(now.Add(-2 * time.Hour))},
		{name: "a gap with only older backups", st: &withGap, backups: []kurav1alpha1.Backup{completedBackup("b1", now.Add(-2*time.Hour))},
			archiving: reasonArchiveGap, pitr: reasonPITRNoBackup, messageHas: "backups b1 restore, but cannot be rolled forward", firstIsCleared: true},
		{name: "a gap followed by a backup: ready again from that backup", st: &withGap,
			backups:   []kurav1alpha1.Backup{completedBackup("b1", now.Add(-2*time.Hour)), completedBackup("b2", now.Add(-30*time.Minute))},
			archiving: reasonArchiving, pitr: reasonPITRReady, first: new(now.Add(-30 * time.Minute))},
		{name: "stalled", st: &stalled, backups: []kurav1alpha1.Backup{completedBackup("b1", now.Add(-2*time.Hour))},
			archiving: reasonArchiveStalled, pitr: reasonPITRNoArchive},
		{name: "waiting for the lease", st: &archive.Status{CaughtUp: now}, archiving: reasonArchiveLease, pitr: reasonPITRNoArchive},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			out, conds := ArchiveStatus(c, tc.st, tc.err, tc.backups, now)
			if conds[0].Reason != tc.archiving || conds[1].Reason != tc.pitr {
				t.Fatalf("reasons %s / %s, want %s / %s (%+v)", conds[0].Reason, conds[1].Reason, tc.archiving, tc.pitr, conds)
			}
			if (conds[0].Status == metav1.ConditionTrue) != (tc.archiving == reasonArchiving) || (conds[1].Status == metav1.ConditionTrue) != (tc.pitr == reasonPITRReady) {
				t.Errorf("statuses %+v", conds)
			}
			if tc.first != nil && (out.FirstRecoverableTime == nil || !out.FirstRecoverableTime.Time.Equal(*tc.first)) {
				t.Errorf("first recoverable time %v, want %v", out.FirstRecoverableTime, tc.first)
			}
			if tc.firstIsCleared && out.FirstRecoverableTime != nil {
				t.Errorf("first recoverable time %v after a gap without a newer backup", out.FirstRecoverableTime)
			}
			if !strings.Contains(conds[1].Message+out.Message, tc.messageHas) {
				t.Errorf("messages %q / %q lack %q", conds[1].Message, out.Message, tc.messageHas)
			}
		})
	}
}
