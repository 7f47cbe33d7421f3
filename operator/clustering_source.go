package operator

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kurav1alpha1 "github.com/kura-db/kura/api/v1alpha1"
	"github.com/kura-db/kura/internal/builder"
	"github.com/kura-db/kura/internal/clustering"
	"github.com/kura-db/kura/internal/contract"
	"github.com/kura-db/kura/internal/engine"
	"github.com/kura-db/kura/internal/gtid"
	"github.com/kura-db/kura/internal/mycnf"
)

// kubeSource reports one MySQLCluster to its clustering loop: the spec knobs, what status
// recorded, and every instance from its Pod. The operator reaches instances at their Pod IPs;
// replicas reach their source at its stable DNS name under the headless Service.
type kubeSource struct {
	client client.Client
	// direct reads a user's credentials Secret, which the cache does not hold (it holds only
	// the Secrets Kura created); the result is kept for userSecretTTL.
	direct client.Reader
	key    types.NamespacedName
	// memo holds the executed sets the last pass saw, newer than status (see executedMemo).
	memo *executedMemo
	// engineOptions bound every SQL call.
	engineOptions engine.Options

	mu    sync.Mutex
	conns map[string]*pooled // by pod name

	userSecret     *corev1.Secret
	userSecretRead time.Time
}

// userSecretTTL is how long a user's credentials Secret read from the API server is used
// before it is read again: one read per cluster per TTL instead of one per pass.
const userSecretTTL = 30 * time.Second

type pooled struct {
	addr, password string
	// tls identifies the TLS setting the pool was opened with (the CA, the name verified and
	// the replicas' CA file); a change re-opens it.
	tls string
	sql *clustering.EngineSQL
}

func (s *kubeSource) close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, p := range s.conns {
		_ = p.sql.Instance.Close()
	}
	s.conns = nil
}

// Snapshot implements clustering.Source.
func (s *kubeSource) Snapshot(ctx context.Context) (clustering.Snapshot, error) {
	c := &kurav1alpha1.MySQLCluster{}
	if err := s.client.Get(ctx, s.key, c); err != nil {
		return clustering.Snapshot{}, fmt.Errorf("failed to get MySQLCluster: %w", err)
	}
	secret, err := s.credentials(ctx, c)
	if err != nil {
		return clustering.Snapshot{}, fmt.Errorf("failed to get the credentials Secret: %w", err)
	}
	if missing := builder.MissingCredentialKeys(secret); len(missing) > 0 {
		return clustering.Snapshot{}, fmt.Errorf("credentials Secret %s lacks %s", secret.Name, strings.Join(missing, ", "))
	}
	var pods corev1.PodList
	if err := s.client.List(ctx, &pods, client.InNamespace(c.Namespace), client.MatchingLabels(builder.SelectorLabels(c))); err != nil {
		return clustering.Snapshot{}, fmt.Errorf("failed to list Pods: %w", err)
	}
	sts := &appsv1.StatefulSet{}
	desiredRevision := ""
	if err := s.client.Get(ctx, types.NamespacedName{Namespace: c.Namespace, Name: builder.StatefulSetName(c)}, sts); err == nil {
		desiredRevision = sts.Status.UpdateRevision
	}
	byOrdinal := map[int]*corev1.Pod{}
	maxOrdinal := int(builder.Replicas(c)) - 1
	for i := range pods.Items {
		p := &pods.Items[i]
		n, ok := ordinalOf(c.Name, p.Name)
		if !ok {
			continue
		}
		byOrdinal[n] = p
		if n > maxOrdinal {
			maxOrdinal = n
		}
	}
	snap := clustering.Snapshot{
		Cluster:  c.Namespace + "/" + c.Name,
		Spec:     specOf(c),
		Recorded: recordedOf(c),
		Engine:   clustering.Traits(builder.Engine(c)),
	}
	s.memo.overlay(&snap.Recorded)
	ips := map[string]string{}
	tlsPods := map[string]bool{}
	allTLS := len(byOrdinal) > 0
	for n := 0; n <= maxOrdinal; n++ {
		t := clustering.Target{
			Ordinal:         n,
			Name:            builder.PodName(c, int32(n)),
			Host:            builder.InstanceHost(c, int32(n)),
			Port:            contract.MySQLPort,
			DesiredRevision: desiredRevision,
		}
		if p, ok := byOrdinal[n]; ok {
			t.Pod = clustering.PodFacts{
				Exists:      true,
				Phase:       string(p.Status.Phase),
				Ready:       podReady(p),
				Terminating: p.DeletionTimestamp != nil,
				RoleLabel:   p.Labels[contract.LabelRole],
				UID:         string(p.UID),
			}
			t.Revision = p.Labels[appsv1.ControllerRevisionHashLabelKey]
			t.Cloning = initRunning(p, contract.ContainerKuraInit)
			ips[t.Name] = p.Status.PodIP
			tlsPods[t.Name] = servesTLS(p)
			allTLS = allTLS && tlsPods[t.Name]
		}
		snap.Targets = append(snap.Targets, t)
	}
	kind := builder.Engine(c)
	admin := string(secret.Data[contract.KeyOperatorPassword])
	repl := string(secret.Data[contract.KeyReplicationPassword])
	var caPEM []byte
	if len(tlsPods) > 0 {
		cm := &corev1.ConfigMap{}
		if err := s.client.Get(ctx, types.NamespacedName{Namespace: c.Namespace, Name: builder.CAConfigMapName(c)}, cm); err == nil {
			caPEM = []byte(cm.Data[contract.TLSCAKey])
		}
	}
	snap.Connect = func(t clustering.Target) (clustering.SQL, error) {
		ip := ips[t.Name]
		if ip == "" {
			return nil, fmt.Errorf("pod %s has no IP yet", t.Name)
		}
		sec := connSecurity{}
		if tlsPods[t.Name] {
			// The instance serves the certificate: the operator verifies it against the
			// cluster's CA for the instance's DNS name (it dials the Pod IP). Replication runs
			// over TLS once every instance serves it, so no replica is pointed with TLS at a
			// source that does not serve it while a cluster rolls TLS in.
			if len(caPEM) == 0 {
				return nil, fmt.Errorf("pod %s serves TLS but ConfigMap %s has no %s to verify it with", t.Name, builder.CAConfigMapName(c), contract.TLSCAKey)
			}
			sec.caPEM, sec.serverName = caPEM, t.Host
			if allTLS {
				sec.replicationCA = contract.TLSCAFile
			}
		}
		return s.connect(kind, t.Name, ip, admin, repl, sec)
	}
	return snap, nil
}

// credentials returns the cluster's credentials Secret: the generated one from the cache, a
// user's from the API server at most every userSecretTTL.
func (s *kubeSource) credentials(ctx context.Context, c *kurav1alpha1.MySQLCluster) (*corev1.Secret, error) {
	key := types.NamespacedName{Namespace: c.Namespace, Name: builder.CredentialsSecretName(c)}
	secret := &corev1.Secret{}
	if c.Spec.CredentialsSecret == nil || s.direct == nil {
		return secret, s.client.Get(ctx, key, secret)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.userSecret != nil && s.userSecret.Name == key.Name && time.Since(s.userSecretRead) < userSecretTTL {
		return s.userSecret, nil
	}
	if err := s.direct.Get(ctx, key, secret); err != nil {
		return nil, err
	}
	s.userSecret, s.userSecretRead = secret, time.Now()
	return secret, nil
}

// connSecurity is how the operator connects to one instance: with TLS verified against caPEM
// for serverName (empty caPEM: clear text), and the CA file replicas verify their source with
// (empty: replication in clear text).
type connSecurity struct {
	caPEM                     []byte
	serverName, replicationCA string
}

func (c connSecurity) key() string {
	if len(c.caPEM) == 0 {
		return ""
	}
	sum := sha256.Sum256(c.caPEM)
	return hex.EncodeToString(sum[:8]) + "/" + c.serverName + "/" + c.replicationCA
}

// tlsConfig is the client TLS configuration, nil for clear text.
func (c connSecurity) tlsConfig() (*tls.Config, error) {
	if len(c.caPEM) == 0 {
		return nil, nil
	}
	return engine.ClientTLS(c.caPEM, c.serverName)
}

// servesTLS reports whether an instance Pod mounts the server certificate, so its server
// serves TLS.
func servesTLS(p *corev1.Pod) bool {
	for _, v := range p.Spec.Volumes {
		if v.Name == builder.VolumeServerTLS {
			return true
		}
	}
	return false
}

// connect returns a pooled connection, re-opened when the Pod's IP, the password or the TLS
// setting changed.
func (s *kubeSource) connect(kind kurav1alpha1.Engine, name, ip, admin, repl string, sec connSecurity) (clustering.SQL, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.conns == nil {
		s.conns = map[string]*pooled{}
	}
	if p, ok := s.conns[name]; ok {
		if p.addr == ip && p.password == admin && p.tls == sec.key() {
			return p.sql, nil
		}
		_ = p.sql.Instance.Close()
		delete(s.conns, name)
	}
	tlsConfig, err := sec.tlsConfig()
	if err != nil {
		return nil, fmt.Errorf("failed to open %s: %w", name, err)
	}
	opts := s.engineOptions
	opts.ReplicationCA = sec.replicationCA
	inst, err := engine.Open(kind, engine.Endpoint{Host: ip, Port: contract.MySQLPort, User: engine.OperatorUser, Password: admin, TLS: tlsConfig}, opts)
	if err != nil {
		return nil, fmt.Errorf("failed to open %s: %w", name, err)
	}
	sql := &clustering.EngineSQL{
		Instance:            inst,
		ReplicationUser:     engine.ReplicationUser,
		ReplicationPassword: repl,
	}
	s.conns[name] = &pooled{addr: ip, password: admin, tls: sec.key(), sql: sql}
	return sql, nil
}

func ordinalOf(cluster, pod string) (int, bool) {
	rest, ok := strings.CutPrefix(pod, cluster+"-")
	if !ok {
		return 0, false
	}
	n, err := strconv.Atoi(rest)
	return n, err == nil && n >= 0
}

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// specOf maps the cluster's spec (with schema defaults, and fallbacks for objects created
// before a default existed) to the clustering knobs.
func specOf(c *kurav1alpha1.MySQLCluster) clustering.Spec {
	r := c.Spec.Replication
	s := clustering.Spec{
		Replicas:      int(builder.Replicas(c)),
		SemiSync:      r.SemiSync == nil || *r.SemiSync,
		MaxLag:        durationOr(r.MaxLag, defaultMaxLag),
		FailoverGrace: durationOr(r.FailoverGracePeriod, defaultFailoverGrace),
		DownGrace:     durationOr(r.ServerDownGracePeriod, defaultDownGrace),
		ApplyTimeout:  durationOr(r.ApplyTimeout, defaultApplyTimeout),
		ErrantPolicy:  clustering.ErrantManual,
		AutoFailover:  r.AutoFailover == nil || *r.AutoFailover,
		Paused:        c.Spec.Paused,
	}
	for _, o := range mycnf.Settings(c) {
		s.Config = append(s.Config, clustering.Setting{Name: o.Name, Value: o.Value, Dynamic: o.Dynamic})
	}
	if r.ErrantReplicaPolicy == kurav1alpha1.ErrantReplicaReclone {
		s.ErrantPolicy = clustering.ErrantReclone
	}
	if sw := c.Spec.Switchover; sw != nil {
		s.Switchover = &clustering.SwitchoverRequest{ID: sw.ID, Target: int(sw.Target)}
	}
	return s
}

// recordedOf reads the loop's durable memory from status.
func recordedOf(c *kurav1alpha1.MySQLCluster) clustering.Recorded {
	rec := clustering.Recorded{Primary: clustering.NoPrimary, Term: c.Status.Term, Errant: map[int]gtid.Set{}, Executed: map[int]gtid.Set{},
		FormerPrimaries: map[int]bool{}, Reclones: reclonesOf(c)}
	flavor := engine.FlavorOf(builder.Engine(c))
	if w := c.Status.AsynchronousWindow; w != nil {
		since, err1 := gtid.Parse(flavor, w.Since)
		until, err2 := gtid.Parse(flavor, w.Until)
		if err1 != nil || err2 != nil {
			// Unreadable: keep the window open from nothing, which refuses automatic failover.
			since, until = gtid.Set{}, gtid.Set{}
		}
		rec.Async = &clustering.AsyncWindow{Since: since, Until: until}
	}
	for _, h := range c.Status.History {
		if n, ok := ordinalOf(c.Name, h.To); ok {
			rec.FormerPrimaries[n] = true
		}
	}
	if p := c.Status.CurrentPrimaryIndex; p != nil {
		rec.Primary = int(*p)
	}
	if sw := c.Status.Switchover; sw != nil && (sw.Phase == clustering.SwitchoverCompleted || sw.Phase == clustering.SwitchoverRefused) {
		rec.SwitchoverHandled = sw.ID
	}
	for _, in := range c.Status.Instances {
		n, ok := ordinalOf(c.Name, in.Name)
		if !ok {
			continue
		}
		if set, err := gtid.Parse(flavor, in.ErrantGTIDs); err == nil && in.ErrantGTIDs != "" {
			rec.Errant[n] = set
		}
		if set, err := gtid.Parse(flavor, in.GTIDExecuted); err == nil && in.GTIDExecuted != "" {
			rec.Executed[n] = set
		}
	}
	return rec
}

// initRunning reports whether an init container is running: kura init clones an empty
// instance from a donor, which can take long, and the loop must not treat that as a failure.
func initRunning(p *corev1.Pod, name string) bool {
	for _, s := range p.Status.InitContainerStatuses {
		if s.Name == name && s.State.Running != nil {
			return true
		}
	}
	return false
}

// reclonesOf reads the re-clone records from status.reclones, by ordinal.
func reclonesOf(c *kurav1alpha1.MySQLCluster) map[int]clustering.Reclone {
	out := map[int]clustering.Reclone{}
	for _, r := range c.Status.Reclones {
		n, ok := ordinalOf(c.Name, r.Instance)
		if !ok {
			continue
		}
		donor, ok := ordinalOf(c.Name, r.Donor)
		if !ok {
			donor = clustering.NoPrimary
		}
		out[n] = clustering.Reclone{Count: int(r.Count), First: r.FirstTime.Time, Last: r.LastTime.Time, Reason: r.Reason,
			Donor: donor, Pod: r.PodUID, Finished: timeOf(r.FinishedTime), HealthySince: timeOf(r.HealthySince)}
	}
	return out
}

func timeOf(t *metav1.Time) time.Time {
	if t == nil {
		return time.Time{}
	}
	return t.Time
}
