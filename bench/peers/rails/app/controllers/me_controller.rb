class MeController < ApplicationController
  before_action :authenticate!

  def show
    memberships = Membership.joins(:org).where(user_id: current_user.id)
                            .pluck("memberships.org_id", "orgs.name", "memberships.role")
    render json: {
      id: current_user.id, email: current_user.email, name: current_user.name,
      created_at: current_user.created_at.utc.iso8601(3),
      memberships: memberships.map { |org_id, name, role| { org_id: org_id, org_name: name, role: role } }
    }
  end
end
