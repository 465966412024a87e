Rails.application.routes.draw do
  get "/healthz", to: "health#show"
  get "/v1/me", to: "me#show"
  scope "/v1/orgs/:org/collections/:collection" do
    get "records", to: "records#index"
    get "records/:id", to: "records#show"
  end
end
