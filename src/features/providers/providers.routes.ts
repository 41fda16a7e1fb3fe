import type { Deps } from '../../container.js';
import { crudRoutes } from '../../http/crud-routes.js';
import { Provider, ProviderInput, ProviderListQuery, ProviderPatch } from './providers.schema.js';
import { createProvider, deleteProvider, getProvider, listProviders, updateProvider } from './providers.service.js';

export const providersRoutes = (deps: Deps) =>
  crudRoutes(deps, {
    path: '/v1/providers',
    noun: 'provider',
    listSummary: 'List providers: locationId and specialty filters',
    schemas: { resource: Provider, input: ProviderInput, patch: ProviderPatch, query: ProviderListQuery },
    service: { create: createProvider, list: listProviders, get: getProvider, update: updateProvider, remove: deleteProvider },
  });
