package operator

import (
	"context"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/utils/ptr"
)

// An operator restarted in the same Pod takes the leader Lease back at once (its identity is
// the Pod's name); an operator in another Pod waits until the Lease expires.
func TestRestartedOperatorTakesItsLeaseBackAtOnce(t *testing.T) {
	env := testenv(t)
	ctx := context.Background()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "lease-"}}
	if err := env.Client.Create(ctx, ns); err != nil {
		t.Fatal(err)
	}
	// The Lease as a crashed operator in Pod kura-abc left it: held, renewed just now.
	now := metav1.NewMicroTime(time.Now())
	lease := &coordinationv1.Lease{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns.Name, Name: "kura-operator.kura.dev"},
		Spec: coordinationv1.LeaseSpec{HolderIdentity: ptr.To("kura-abc"), LeaseDurationSeconds: ptr.To[int32](15),
			AcquireTime: &now, RenewTime: &now},
	}
	if err := env.Client.Create(ctx, lease); err != nil {
		t.Fatal(err)
	}
	acquire := func(pod string) bool {
		t.Setenv("POD_NAME", pod)
		lock, err := leaderLock(env.Config, Options{LeaderElectionID: "kura-operator.kura.dev", LeaderElectionNS: ns.Name})
		if err != nil {
			t.Fatal(err)
		}
		lctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		defer cancel()
		got := make(chan struct{})
		le, err := leaderelection.NewLeaderElector(leaderelection.LeaderElectionConfig{
			Lock: lock, LeaseDuration: 15 * time.Second, RenewDeadline: 10 * time.Second, RetryPeriod: 500 * time.Millisecond,
			Callbacks: leaderelection.LeaderCallbacks{OnStartedLeading: func(context.Context) { close(got) }, OnStoppedLeading: func() {}},
		})
		if err != nil {
			t.Fatal(err)
		}
		go le.Run(lctx)
		select {
		case <-got:
			return true
		case <-lctx.Done():
			return false
		}
	}
	if acquire("kura-other") {
		t.Fatal("another Pod took a Lease that had not expired")
	}
	if !acquire("kura-abc") {
		t.Fatal("the operator restarted in the same Pod did not take its Lease back within 3 s")
	}
}
