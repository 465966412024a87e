Rails.application.routes.draw do
  get "/healthz", to: "health#show"
  get "/v1/me", to: "me#show"
  post "/v1/auth/login", to: "sessions#create"
  get "/v1/orgs/:org/audit", to: "audit#index"
  scope "/v1/orgs/:org/collections/:collection" do
    get "records", to: "records#index"
    post "records", to: "records#create"
    get "records/:id", to: "records#show"
    patch "records/:id", to: "records#update"
  end
end
