package agent

// AlterUserScramCredentials, v0. See 50_describe_user_scram_credentials.go.

import (
	"context"
	"errors"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/floe-io/floe/metadata"
)

func init() {
	register(apiSpec{key: 51, min: 0, max: 0, serve: handleSync((*Agent).handleAlterUserSCRAM)})
}

func (a *Agent) handleAlterUserSCRAM(ctx context.Context, rq *request, req *kmsg.AlterUserSCRAMCredentialsRequest) (*kmsg.AlterUserSCRAMCredentialsResponse, error) {
	resp := req.ResponseKind().(*kmsg.AlterUserSCRAMCredentialsResponse)
	allowed := a.authorizedCluster(rq.conn, metadata.ACLOpAlter)
	add := func(user string, err error) {
		r := kmsg.NewAlterUserSCRAMCredentialsResponseResult()
		r.User = user
		if err != nil {
			var ke *kerr.Error
			msg := err.Error()
			switch {
			case errors.As(err, &ke):
			case errors.Is(err, metadata.ErrUnknownUser):
				ke = kerr.ResourceNotFound
			case errors.Is(err, metadata.ErrUnsupportedMechanism):
				ke = kerr.UnsupportedSaslMechanism
			default:
				ke, msg = kafkaError(err)
				if ke == kerr.UnknownServerError {
					ke = kerr.UnacceptableCredential
				}
			}
			r.ErrorCode = ke.Code
			r.ErrorMessage = errMessage(msg)
		}
		resp.Results = append(resp.Results, r)
	}
	for _, d := range req.Deletions {
		if !allowed {
			add(d.Name, kafkaErrorf(kerr.ClusterAuthorizationFailed, "altering users needs ALTER on the cluster"))
			continue
		}
		mech, ok := scramMechanismCodes[d.Mechanism]
		if !ok {
			add(d.Name, kafkaErrorf(kerr.UnsupportedSaslMechanism, "unknown SCRAM mechanism code %d", d.Mechanism))
			continue
		}
		add(d.Name, a.store.DeleteScramCredential(ctx, d.Name, mech))
	}
	for _, u := range req.Upsertions {
		if !allowed {
			add(u.Name, kafkaErrorf(kerr.ClusterAuthorizationFailed, "altering users needs ALTER on the cluster"))
			continue
		}
		mech, ok := scramMechanismCodes[u.Mechanism]
		if !ok {
			add(u.Name, kafkaErrorf(kerr.UnsupportedSaslMechanism, "unknown SCRAM mechanism code %d", u.Mechanism))
			continue
		}
		cred, err := metadata.NewScramCredential(mech, u.Salt, u.SaltedPassword, int(u.Iterations))
		if err == nil {
			err = a.store.SetScramCredential(ctx, u.Name, mech, cred)
		}
		if err == nil {
			a.log.Info("SCRAM credential set", "user", u.Name, "mechanism", mech, "by", rq.conn.auth.principal)
		}
		add(u.Name, err)
	}
	return resp, nil
}
